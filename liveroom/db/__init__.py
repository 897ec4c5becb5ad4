"""SQL: the engine, the declarative base, the tables and their Alembic migrations."""
