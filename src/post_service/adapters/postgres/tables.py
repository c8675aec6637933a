"""The schema as SQLAlchemy Core tables. Alembic migrations own the real schema;
a test checks that these definitions and the migrated database agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)

# The Alembic revision this build's SQL was written for. Readiness stays NOT_SERVING until
# the database is at exactly this one (tests/unit holds it to the newest revision).
SCHEMA_REVISION = "0003"

# Stable constraint names, so later migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, Identity(always=False), primary_key=True),
    Column("author_id", Integer, nullable=False),
    Column("title", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Index("ix_posts_author_id_id", "author_id", text("id DESC")),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(32), nullable=False),
    Column("post_id", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("trace_context", Text, nullable=False, server_default=text("'{}'")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_pending", "id", postgresql_where=text("sent_at IS NULL")),
    Index("ix_outbox_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
)

# A user account deleted on the platform: CreatePost and PutPost refuse its id for good.
deleted_users = Table(
    "deleted_users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=False),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
