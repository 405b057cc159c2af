"""Training: losses, data mixture, dataset, recipes, trainer, distributed launch."""
