"""Video DataFlywheel's caption refinement (arXiv 2409.19532). See docs/refine.md.

captions.py   HowTo100M caption.json: read (per-video errors), write
blocks.py     transcript lines -> prompt blocks, every line timed ("12s: ...")
prompts.py    template files with a version hash, few-shot examples, frame descriptions
parse.py      reply -> timed captions (plain text or JSON); out-of-block captions dropped
frames.py     the image-language side: frames described at their timestamps
backends/     one interface: openai (any compatible server), hf (local LM), sparrow (a checkpoint
              that sees), and the content-addressed response cache
job.py        the refine stage of sparrow.jobs; collect.py its outputs; ledger.py its costs
run.py        refine() and dry_run()
metrics/      the trinity: BLEU-4, ROUGE-L, CIDEr-D, distinct-n, self-BLEU, Vendi, slot accuracy,
              time offsets, paired bootstrap
"""

from __future__ import annotations

from sparrow.lazy import lazy_exports

# Names load lazily: the CLI reads RefineConfig's defaults without importing the job and the metrics.
__all__, __getattr__ = lazy_exports(__name__, {".config": "RefineConfig", ".run": "DryRun dry_run refine"})
