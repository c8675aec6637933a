"""The chart's read replica values: DB_READ_URL from the chart's Secret, from an existing
Secret, or composed from CloudNativePG's `<cluster>-app` Secret; only the server gets it."""

from __future__ import annotations

import re
from typing import Any

from post_service.config import DatabaseSettings

from .chartlib import RenderFn

READ_URL = "postgresql+asyncpg://post:s3cret@db-ro.example:5432/post_db"
CNPG = (
    "--set", "database.credentials.secret=forum-db-app",
    "--set", "database.credentials.host=forum-db-rw",
    "--set", "database.credentials.readHost=forum-db-ro",
)  # fmt: skip
# What CloudNativePG's generated app Secret holds (its password: letters and digits).
FROM_SECRET = {"DB_SECRET_USERNAME": "app", "DB_SECRET_PASSWORD": "Xy12", "DB_SECRET_DBNAME": "app"}


def containers(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    (doc,) = [doc for doc in docs if doc["kind"] == kind]
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def test_without_a_read_url_no_container_gets_db_read_url(render: RenderFn) -> None:
    for kind in ("Deployment", "Job"):
        for container in containers(render("defaults"), kind):
            assert "DB_READ_URL" not in env_of(container)


def test_read_url_goes_into_the_secret_and_only_the_server_reads_it(render: RenderFn) -> None:
    docs = render("defaults", "--set-string", f"database.readUrl={READ_URL}")
    secrets = [doc for doc in docs if doc["kind"] == "Secret"]
    assert secrets
    assert all("DB_READ_URL" in secret["data"] for secret in secrets)
    server = env_of(containers(docs, "Deployment")[-1])
    assert server["DB_READ_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DB_READ_URL"
    assert "DB_READ_URL" not in env_of(containers(docs, "Job")[-1])


def test_an_existing_secret_names_its_read_url_key(render: RenderFn) -> None:
    docs = render(
        "defaults",
        "--set", "database.existingSecret=post-db",
        "--set", "database.existingSecretReadKey=read-url",
    )  # fmt: skip
    server = env_of(containers(docs, "Deployment")[-1])
    reference = server["DB_READ_URL"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "post-db", "key": "read-url"}


def test_cloudnativepg_credentials_compose_both_urls_in_the_pod(render: RenderFn) -> None:
    docs = render("defaults", *CNPG)
    assert not [doc for doc in docs if doc["kind"] == "Secret"]  # the operator's is used
    entries = containers(docs, "Deployment")[-1]["env"]
    names = [entry["name"] for entry in entries]
    env = env_of(containers(docs, "Deployment")[-1])
    secret_keys = {
        name: env[name]["valueFrom"]["secretKeyRef"]
        for name in ("DB_SECRET_USERNAME", "DB_SECRET_PASSWORD", "DB_SECRET_DBNAME")
    }
    assert secret_keys == {
        "DB_SECRET_USERNAME": {"name": "forum-db-app", "key": "username"},
        "DB_SECRET_PASSWORD": {"name": "forum-db-app", "key": "password"},
        "DB_SECRET_DBNAME": {"name": "forum-db-app", "key": "dbname"},
    }
    # Kubernetes expands $(NAME) only for variables defined earlier in the list.
    for url_name in ("DB_URL", "DB_READ_URL"):
        for referenced in re.findall(r"\$\((\w+)\)", env[url_name]["value"]):
            assert names.index(referenced) < names.index(url_name)
    expanded = {
        name: re.sub(r"\$\((\w+)\)", lambda m: FROM_SECRET[m.group(1)], env[name]["value"])
        for name in ("DB_URL", "DB_READ_URL")
    }
    assert expanded == {
        "DB_URL": "postgresql+asyncpg://app:Xy12@forum-db-rw:5432/app",
        "DB_READ_URL": "postgresql+asyncpg://app:Xy12@forum-db-ro:5432/app",
    }
    DatabaseSettings(url=expanded["DB_URL"], read_url=expanded["DB_READ_URL"])
    job_env = env_of(containers(docs, "Job")[-1])
    assert "DB_URL" in job_env
    assert "DB_READ_URL" not in job_env
