"""HOW a pathway moves: the shared engine, the service (the embedding API), the CLI."""

__version__ = "0.1.0"
