"""Training: the options, the configuration, the loop and its optimizers."""
