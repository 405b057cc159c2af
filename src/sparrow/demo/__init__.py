"""The main job: the whole pipeline end to end on the embedded world, with an HTML report.

1. generate the world (videos, benchmark, text corpus)            -> OUT/world        (data.py)
2. synthesize pseudo-videos from the world's text corpus (Sparrow) -> OUT/world/synth  (data.py)
3. train the tiny video-LLM with Apollo's 3 stages on the mix, a video-only baseline alongside, and save
   the untrained reference                                          -> OUT/runs/...     (recipes.py, runs.py)
4. evaluate every checkpoint on the test benchmark under the video, centre-frame and text-only
   conditions, and curate the benchmark from those results (ApolloBench) -> OUT/eval, OUT/curate
                                                                                        (evaluate.py)
5. write OUT/report.html: paired comparisons (compare.py), the honest reading (reading.py), figures
   (figures.py) and one builder per section (report.py)

Every step resumes (state.py): re-running the same command skips what is finished and continues what is
not. ``run.py`` strings the steps together; ``config.py`` holds the settings and their defaults.
"""

from sparrow.demo.compare import comparisons, paired_difference
from sparrow.demo.config import REFERENCE, DemoConfig, DemoError, default_recipe
from sparrow.demo.reading import honest_reading
from sparrow.demo.recipes import load_recipe, scale_steps, video_only_variant
from sparrow.demo.report import write_report
from sparrow.demo.run import run_demo

__all__ = [
    "REFERENCE",
    "DemoConfig",
    "DemoError",
    "comparisons",
    "default_recipe",
    "honest_reading",
    "load_recipe",
    "paired_difference",
    "run_demo",
    "scale_steps",
    "video_only_variant",
    "write_report",
]
