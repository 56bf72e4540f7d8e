"""Studies: one module per experiment a user runs (train, compare, continual, qat, ...)."""
