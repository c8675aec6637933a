"""A clone stands on its own: nothing in the repository reads the `shared` folder beside it.

CI happens to check the repository out next to a ``shared`` folder; a newcomer's clone has none.
What the tests need from there (the deployed contracts) is copied into tests/contract/deployed.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve()

# Local state and caches, not the project's files.
SKIPPED_DIRS = {".git", ".venv", ".cache", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                ".import_linter_cache", ".hypothesis", "__pycache__", "node_modules"}  # fmt: skip
TEXT_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".mako"}
TEXT_NAMES = {"Makefile", "Dockerfile", "run"}

# The sibling `shared` folder in any spelling a path could take: a literal relative path, an
# absolute one, or a pathlib expression that climbs out of the repository into a "shared" folder.
OUTSIDE_SHARED = re.compile(
    r"""\.\./shared\b"""
    r"""|/work/shared\b"""
    r"""|\.parent\w*\s*/\s*["']shared["']"""
    r"""|["']shared["']\s*/\s*["']contract["']"""
)


def project_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRS.intersection(relative.parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            files.append(path)
    return files


def test_no_file_reads_the_shared_folder_beside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in project_files()
        if path != THIS_FILE
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_SHARED.search(line)
    ]
    assert offenders == []


def test_the_scan_covers_tests_scripts_bench_and_devenv() -> None:
    scanned = {path.relative_to(ROOT).parts[0] for path in project_files()}
    assert {"tests", "scripts", "bench", "devenv", "src", "Makefile", ".ci"} <= scanned


def test_the_pattern_catches_the_ways_a_path_reaches_the_shared_folder() -> None:
    caught = [
        # Split, so that this file holds no such path itself.
        'ROOT.parent / "shared' + '" / "contract"',
        "Path(__file__).parents[3] / 'shared' / 'contract'",
        "protoc -I .." + "/shared/contract",
        "cat /work/shared/STYLE.md",
    ]
    allowed = ['"serviceAccount": {"create": False, "name": "shared"}', "shared_buffers = 128MB"]
    assert all(OUTSIDE_SHARED.search(line) for line in caught)
    assert not any(OUTSIDE_SHARED.search(line) for line in allowed)
