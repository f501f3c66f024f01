"""HOW it is kept: SQLAlchemy models, the append-only hash-chained log, migrations."""
