"""Progress lines of a benchmark run, on stderr (stdout gets the results table)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from devenv.grpc_process import ROOT


def log(message: str) -> None:
    sys.stderr.write(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, else as it is."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
