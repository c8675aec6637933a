"""post.v2: full-text search, revisions, create request ids and the page-token key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Adding the generated ``search`` column rewrites the posts table under an ACCESS EXCLUSIVE
lock, in time proportional to the table: run it while the forum is quiet.
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stems Latin-script words with the English Snowball stemmer and Cyrillic ones with the
# Russian one (PostgreSQL's `russian` configuration maps asciiword to english_stem), so one
# column serves a forum whose users write both. store_v2.TEXT_SEARCH_CONFIG must match.
SEARCH_VECTOR = (
    "setweight(to_tsvector('russian'::regconfig, title), 'A') || "
    "setweight(to_tsvector('russian'::regconfig, body), 'B')"
)


def upgrade() -> None:
    op.add_column(
        "posts",
        sa.Column("search", sa.dialects.postgresql.TSVECTOR(), sa.Computed(SEARCH_VECTOR)),
    )
    op.create_index("ix_posts_search", "posts", ["search"], postgresql_using="gin")
    # ListPosts' creation-time window.
    op.create_index("ix_posts_created_at", "posts", ["created_at"])

    op.create_table(
        "post_revisions",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_post_revisions_post_id_posts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "revision", name="pk_post_revisions"),
    )
    # Every edit, through v1 or v2, keeps the content it replaces: an edit is exactly an
    # UPDATE that bumps the version (store.py and store_v2.py), so no path can skip it.
    op.execute(
        """
        CREATE FUNCTION posts_keep_revision() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO post_revisions (post_id, revision, title, body, created_at)
            VALUES (OLD.id, OLD.version - 1, OLD.title, OLD.body, OLD.updated_at)
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER posts_keep_revision AFTER UPDATE ON posts FOR EACH ROW "
        "WHEN (OLD.version IS DISTINCT FROM NEW.version) EXECUTE FUNCTION posts_keep_revision()"
    )

    op.create_table(
        "create_requests",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("request_id", name="pk_create_requests"),
    )
    op.create_index("ix_create_requests_created_at", "create_requests", ["created_at"])

    op.create_table(
        "signing_keys",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name="pk_signing_keys"),
    )
    # Made here, once per database, so every replica signs page tokens with the same key and
    # the chart needs no new Secret. It never leaves the database except into the service.
    op.get_bind().execute(
        sa.text("INSERT INTO signing_keys (name, secret) VALUES ('page_token', :secret)"),
        {"secret": secrets.token_bytes(32)},
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_index("ix_create_requests_created_at", table_name="create_requests")
    op.drop_table("create_requests")
    op.execute("DROP TRIGGER posts_keep_revision ON posts")
    op.execute("DROP FUNCTION posts_keep_revision()")
    op.drop_table("post_revisions")
    op.drop_index("ix_posts_created_at", table_name="posts")
    op.drop_index("ix_posts_search", table_name="posts")
    op.drop_column("posts", "search")
