"""Progress lines for slow set-up steps, shown while pytest runs (it captures print)."""

from __future__ import annotations

import time

import pytest


def progress(request: pytest.FixtureRequest, message: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[{time.strftime('%H:%M:%S')}] {message}")
