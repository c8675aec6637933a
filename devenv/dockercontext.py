"""The exact build context of a Dockerfile, as a reproducible tar, and what its result depends on.

``build_context(dockerfile)`` packs only the files the Dockerfile's ``COPY``/``ADD`` lines name
(minus what ``.dockerignore`` drops, minus anything git ignores: ``.venv``, caches, ``.env``),
plus the Dockerfile and ``.dockerignore``, with fixed owners and times. The same inputs give
the same bytes, so its hash can name the image: an unchanged image needs no build at all.

``base_images(dockerfile, build_args)`` lists the images its ``FROM`` lines start from, with
``ARG`` defaults and the given build arguments substituted.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Files in the context get this time (2023-11-14); poetry's wheels cannot hold pre-1980 times.
FIXED_MTIME = 1_700_000_000


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(dockerfile: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    result = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    return result


def copy_sources(dockerfile: Path) -> list[str]:
    """What ``COPY``/``ADD`` take from the context (not ``--from`` another stage)."""
    sources: list[str] = []
    for instruction in instructions(dockerfile):
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        tokens = instruction.args.split()
        flags = [t for t in tokens if t.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        *paths, _destination = [t for t in tokens if not t.startswith("--")]
        sources += [path.removeprefix("./").rstrip("/") or "." for path in paths]
    return sources


def base_images(dockerfile: Path, build_args: Mapping[str, str]) -> list[str]:
    """The images the ``FROM`` lines name (stage names excluded), arguments substituted."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    for instruction in instructions(dockerfile):
        if instruction.keyword == "ARG" and not images and not stages:
            name, _, default = instruction.args.partition("=")
            args[name] = build_args.get(name, default)
        elif instruction.keyword == "FROM":
            words = instruction.args.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[0])
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
            if image not in stages and image not in images:
                images.append(image)
    return images


def dockerignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match syntax plus ``**``) as a regex."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip().strip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def _candidate_files(context: Path, sources: list[str]) -> Iterable[str]:
    """Tracked and untracked-but-not-ignored files under ``sources`` (a plain walk outside git)."""
    listed = subprocess.run(
        ["git", "-C", str(context), "ls-files", "-z", "--cached", "--others",
         "--exclude-standard", "--", *sources],
        capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode == 0:
        return sorted({name for name in listed.stdout.decode().split("\0") if name})
    return sorted(
        str(path.relative_to(context))
        for source in sources
        for path in (
            [context / source] if (context / source).is_file() else (context / source).rglob("*")
        )
        if path.is_file()
    )


def build_context(dockerfile: Path, context: Path) -> bytes:
    """The tar ``docker build -`` gets: see the module docstring."""
    patterns = dockerignore_patterns(context)
    names = [
        name
        for name in _candidate_files(context, copy_sources(dockerfile))
        if (context / name).is_file() and not dockerignore_excludes(name, patterns)
    ]
    extra = [str(dockerfile.relative_to(context))]
    if (context / ".dockerignore").exists():
        extra.append(".dockerignore")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(set(names) | set(extra)):
            data = (context / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o755 if (context / name).stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
