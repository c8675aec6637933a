#!/usr/bin/env bash
# Makes .venv match poetry.lock: picks Python 3.12 (3.11 at least), installs Poetry into
# .cache/poetry, and runs `poetry install` only when the lock or pyproject changed.
# Idempotent; a no-op taking well under a second when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

POETRY_VERSION=2.5.1
stamp=.venv/.installed-$(cat poetry.lock pyproject.toml | sha256sum | cut -c1-16)
[ -f "$stamp" ] && exit 0

pick_python() {
  local candidate
  for candidate in python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 python3.13 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  echo "Python 3.11-3.13 not found" >&2
  exit 1
}

if [ ! -x .cache/poetry/bin/poetry ]; then
  "$(pick_python)" -m venv .cache/poetry
  .cache/poetry/bin/pip install -q "poetry==$POETRY_VERSION"
fi
if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
export POETRY_VIRTUALENVS_IN_PROJECT=true POETRY_NO_INTERACTION=1
.cache/poetry/bin/poetry install --sync -q
rm -f .venv/.installed-*
touch "$stamp"
