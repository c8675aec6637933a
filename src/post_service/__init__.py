"""Post Service: the forum platform's posts over gRPC, stored in PostgreSQL."""

from importlib.metadata import PackageNotFoundError, version


def service_version() -> str:
    try:
        return version("post-service")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+source"
