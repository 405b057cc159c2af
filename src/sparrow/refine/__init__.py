"""Video DataFlywheel's caption refinement (arXiv 2409.19532). See docs/refine.md.

captions.py   HowTo100M caption.json: read (per-video errors), write
blocks.py     transcript lines -> prompt blocks, every line timed ("12s: ...")
prompts.py    template files with a version hash, few-shot examples, frame descriptions
parse.py      reply -> timed captions (plain text or JSON); out-of-block captions dropped
frames.py     the image-language side: frames described at their timestamps
config.py     the run's settings and the chat backend they build (sparrow.chat, behind its cache)
caption_stage.py  what every caption job shares (CaptionJob, CaptionStage; the flywheel's too)
job.py        RefineStage, the refine stage of sparrow.jobs; collect.py its outputs; ledger.py its costs
run.py        refine() and dry_run()

The chat backends are ``sparrow.chat``; the trinity metrics are ``sparrow.caption_metrics``.
"""

from __future__ import annotations

from sparrow.lazy import lazy_exports

# Names load lazily: the CLI reads RefineConfig's defaults without importing the job and the metrics.
__all__, __getattr__ = lazy_exports(__name__, {".config": "RefineConfig", ".run": "DryRun dry_run refine"})
