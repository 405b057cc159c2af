"""One module per ``sparrow`` subcommand; each defines ``register(app)``."""
