"""The schema revision readiness waits for is the newest migration this build ships."""

from post_service.adapters.postgres.migrations import head_revision
from post_service.adapters.postgres.tables import SCHEMA_REVISION


def test_the_required_schema_revision_is_the_newest_migration() -> None:
    assert head_revision() == SCHEMA_REVISION
