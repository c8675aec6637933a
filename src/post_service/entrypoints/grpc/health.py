"""grpc.health.v1 statuses, following the database.

``""``, ``post.Post`` and ``post.v2.PostService`` (readiness) are SERVING only while the
database answers and its schema is at the revision this build needs;
``liveness`` stays SERVING while the process runs, so a database outage drains
traffic from the pod instead of restarting it. All go NOT_SERVING at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)

OVERALL = ""
POST_SERVICE = "post.Post"
POST_V2_SERVICE = "post.v2.PostService"
LIVENESS = "liveness"
READINESS_SERVICES = (OVERALL, POST_SERVICE, POST_V2_SERVICE)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseHealthMonitor:
    """Polls the database and keeps the readiness statuses in step with it."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        problem: Callable[[float], Awaitable[str | None]],
        interval_seconds: float,
    ) -> None:
        self._servicer = servicer
        self._problem = problem
        self._interval = interval_seconds
        self._last: str | None = ""  # "" = not checked yet; None = ready

    async def start(self) -> None:
        await self._servicer.set(LIVENESS, SERVING)
        await self.check_once()

    async def check_once(self) -> None:
        try:
            problem = await self._problem(self._interval)
        except Exception as error:
            # Whatever the check raised, the database is not usable; the probe must live on.
            log.exception("database readiness check failed")
            problem = f"readiness check failed: {type(error).__name__}"
        if problem == self._last:
            return
        self._last = problem
        if problem is None:
            log.info("database ready: readiness SERVING")
        else:
            # Logged when the cause changes, not on every poll.
            log.warning("readiness NOT_SERVING: %s", problem, extra={"reason": problem})
        for service in READINESS_SERVICES:
            await self._servicer.set(service, SERVING if problem is None else NOT_SERVING)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_once()
