"""Builds the running service from Settings, and starts and stops it in a clear order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health
from sqlalchemy.ext.asyncio import AsyncEngine

from post_service.adapters.postgres.engine import create_engine
from post_service.adapters.postgres.store import PostgresPostStore
from post_service.adapters.user_service import GrpcUserDirectory, open_channel
from post_service.config import Settings
from post_service.domain.paging import PageLimits
from post_service.entrypoints.grpc.errors import DomainErrorInterceptor
from post_service.entrypoints.grpc.health import DatabaseHealthMonitor, create_health_servicer
from post_service.entrypoints.grpc.server import create_server
from post_service.entrypoints.grpc.servicer import PostServicer
from post_service.service.posts import PostRules, PostService
from post_service.service.usernames import UsernameResolver

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    user_channel: grpc.aio.Channel
    store: PostgresPostStore
    posts: PostService
    server: grpc.aio.Server
    grpc_port: int
    health: health.aio.HealthServicer
    health_monitor: DatabaseHealthMonitor
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.server.start()
        await self.health_monitor.start()
        self._tasks.append(asyncio.create_task(self.health_monitor.run(), name="db-health"))
        log.info("post-service serving gRPC", extra={"grpc_port": self.grpc_port})

    async def stop(self) -> None:
        """Drain: health NOT_SERVING, refuse new RPCs, finish in-flight ones, then close."""
        grace = self.settings.runtime.shutdown_grace_seconds
        log.info("shutting down", extra={"grace_seconds": grace})
        for task in self._tasks:
            task.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.user_channel.close()
        await self.engine.dispose()
        log.info("stopped")


def build_app(settings: Settings) -> App:
    engine = create_engine(settings.db)
    store = PostgresPostStore(engine)
    user_channel = open_channel(settings.user_service)
    users = GrpcUserDirectory(user_channel, settings.user_service.timeout_seconds)
    usernames = UsernameResolver(
        users,
        cache_ttl_seconds=settings.user_service.cache_ttl_seconds,
        cache_size=settings.user_service.cache_size,
    )
    rules = PostRules(
        page_limits=PageLimits(settings.posts.default_page_size, settings.posts.max_page_size),
        max_body_chars=settings.posts.max_body_chars,
    )
    posts = PostService(store, users, usernames, rules)
    health_servicer = create_health_servicer()
    server, port = create_server(
        settings.grpc, PostServicer(posts), health_servicer, [DomainErrorInterceptor()]
    )
    monitor = DatabaseHealthMonitor(
        health_servicer, store.ping, settings.runtime.health_check_interval_seconds
    )
    return App(
        settings=settings,
        engine=engine,
        user_channel=user_channel,
        store=store,
        posts=posts,
        server=server,
        grpc_port=port,
        health=health_servicer,
        health_monitor=monitor,
    )
