"""The schema as SQLAlchemy Core tables. Alembic migrations own the real schema;
a test checks that these definitions and the migrated database agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

# The Alembic revision this build's SQL was written for. Readiness stays NOT_SERVING until
# the database is at exactly this one (tests/unit holds it to the newest revision).
SCHEMA_REVISION = "0004"

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
    # post.v2 SearchPosts: titles weigh A, bodies B; `russian` stems Cyrillic words as
    # Russian and Latin ones as English (migration 0004).
    Column(
        "search",
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('russian'::regconfig, title), 'A') || "
            "setweight(to_tsvector('russian'::regconfig, body), 'B')"
        ),
    ),
    Index("ix_posts_author_id_id", "author_id", text("id DESC")),
    Index("ix_posts_search", "search", postgresql_using="gin"),
    Index("ix_posts_created_at", "created_at"),
)

# A post's earlier versions (post.v2 ListPostRevisions), written by the posts_keep_revision
# trigger on every edit; they go with their post.
post_revisions = Table(
    "post_revisions",
    metadata,
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("title", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# post.v2 CreatePost request ids (AIP-155), kept at least 24 hours.
create_requests = Table(
    "create_requests",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("post_id", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_create_requests_created_at", "created_at"),
)

# Keys made by a migration, shared by every replica: 'page_token' signs post.v2 page tokens.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
