"""Training: losses, data mixtures, resumable data path, recipes, the staged trainer, DDP / FSDP2.

    from sparrow.train import Recipe, RunOptions, train
    summary = train(Recipe.from_yaml("configs/tiny/apollo-3stage.yaml"), RunOptions(out=Path("runs/a")))

Modules: recipe (stages, loaded from YAML), mixture (sources, caps, the stream of draws), data (stream
-> processor -> micro-batches), losses (CE, TaiLr, AdaTaiLr), optim (freezing, AdamW, schedule, loss
choice), step (one optimizer step: update, schedule, AdaTaiLr), initial_model (the model a run starts
from), trainer (the stage loop), checkpoint (model + trainer state, exact resume), rundir (the files of a
run, its guard, the resume point), distributed (DDP / FSDP2), seeds (the one seed formula). Relative
paths follow ``sparrow.paths``. Names load lazily so that importing the package stays cheap. See
docs/train.md.
"""

from __future__ import annotations

from sparrow.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        ".losses": "cross_entropy tailr_loss AdaTaiLr",
        ".mixture": "Mixture MixtureConfig SourceConfig MixtureError",
        ".recipe": "Recipe StageConfig LossConfig RecipeError",
        ".options": "RunOptions",
        ".rundir": "TrainError read_metrics",
        ".trainer": "train",
    },
)
