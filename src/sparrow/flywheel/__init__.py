"""Video DataFlywheel's rounds (arXiv 2409.19532): refine ASR transcripts with an LLM, then train a
captioner on the captions, fine-tune it on human examples, let it re-annotate, score, repeat. See
docs/refine.md.

config.py     FlywheelConfig
data.py       OUT/data: the videos, the human / scored split, the transcripts, the human examples
line_examples.py  one-line few-shot examples: spoken lines aligned with the captions they became
narrated.py   what the captioner is asked (a line's clip and words) and the records it learns from
captioner.py  the round's captioner: recipe filled in, trained (resumable)
pretrained.py the checkpoint the captioners start from (--captioner-init): checked, and refused when it
              was trained on the world the flywheel scores
annotate.py   the re-annotation stage of sparrow.jobs (the captioner behind the response cache)
rounds.py     a round's row: trinity numbers and CIDEr-D intervals against the transcripts and round 0
report.py     report.html: the table, the plots and the plain reading
run.py        flywheel()
loss_study.py loss_study(): AdaTaiLr against cross-entropy on the raw transcripts, per seed, with intervals
"""

from sparrow.flywheel.config import FlywheelConfig, FlywheelError

__all__ = ["FlywheelConfig", "FlywheelError"]
