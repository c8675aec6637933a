"""Settings for a test's own `post-service`, wired to a User-service (stand-in or container)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devenv.post_service_process import service_env

# For tests that hold requests in flight by delaying the stand-in's answers (its
# ``delay_seconds``, under a second or two): no username cache, so every request asks it,
# and a deadline well past the delay, so each request waits for the answer.
SLOW_USER_SERVICE: Mapping[str, str] = MappingProxyType(
    {"USER_SERVICE_TIMEOUT_SECONDS": "5", "USER_SERVICE_CACHE_TTL_SECONDS": "0"}
)


def env_with_user_service(db_url: str, user_service_addr: str, **settings: str) -> dict[str, str]:
    """``service_env`` for a service that asks the User-service at ``user_service_addr``."""
    return service_env(db_url, USER_SERVICE_ADDR=user_service_addr, **settings)
