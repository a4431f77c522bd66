"""The optimisation engine: config schema, objective, training loop and its callbacks."""
