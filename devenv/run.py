"""`make run`: the service with its dependencies on this machine.

Starts what is not configured: a throwaway PostgreSQL when DB_URL is unset, a
single-node Kafka when KAFKA_BOOTSTRAP_SERVERS is unset (set it to "" to run
without Kafka), and a stand-in User-service when USER_SERVICE_ADDR is unset.
On the Kafka it starts, it creates the topics the service uses (named by its
KAFKA_* settings) as the platform's topic provisioning would; a broker you
configure is yours to provision. Then migrates and runs `post-service serve`
until Ctrl-C; everything it started is removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from pydantic import ValidationError

from devenv.kafka import LocalKafka
from devenv.kafka_admin import service_topics
from devenv.post_service_process import POST_SERVICE
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service.config import KafkaSettings


def main() -> int:
    env = dict(os.environ)
    with contextlib.ExitStack() as started:
        if not env.get("DB_URL"):
            postgres = started.enter_context(LocalPostgres())
            env["DB_URL"] = postgres.url
            print(f"local PostgreSQL: {postgres.dsn()}", flush=True)
        if "KAFKA_BOOTSTRAP_SERVERS" not in env:
            kafka = started.enter_context(LocalKafka())
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
            print(f"local Kafka: {kafka.bootstrap_servers}", flush=True)
            provision(kafka)
        if not env.get("USER_SERVICE_ADDR"):
            user_service = StandInUserService().start()
            started.callback(user_service.stop)
            env["USER_SERVICE_ADDR"] = user_service.addr
            print(f"stand-in User-service: {user_service.addr} (users 1..999)", flush=True)
        subprocess.run([POST_SERVICE, "migrate"], env=env, check=True)
        print(
            f"post-service: gRPC on port {env.get('GRPC_PORT', '50054')}, Ctrl-C stops", flush=True
        )
        serve = subprocess.Popen([POST_SERVICE, "serve"], env=env)
        try:
            return serve.wait()
        except KeyboardInterrupt:
            serve.terminate()
            return serve.wait(30)


def provision(kafka: LocalKafka) -> None:
    """The service's topics and its consumer group's coordinator, before the service starts."""
    try:
        settings = KafkaSettings()
    except ValidationError:
        return  # `post-service` names the bad variable and stops; nothing to provision for
    topics = service_topics(settings)
    kafka.provision(topics, consumer_group=settings.consumer_group)
    print(f"local Kafka topics: {', '.join(topics)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
