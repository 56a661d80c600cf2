"""Storage: SQLAlchemy Core tables, numbered alembic migrations, the async engine."""
