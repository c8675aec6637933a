"""PostgreSQL through SQLAlchemy Core (async) and asyncpg."""
