"""Images for the cluster's containerd: ``docker save`` archives, imported with ``ctr``.

No registry can be reached, so the pod sandbox ("pause") image is made here from
``deploy/dev/images/pause/pause.c``: compiled static with gcc and packed as the only file of a
one-layer image, without any image builder. Images built by Docker are exported with
``docker save`` and imported the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAUSE_SOURCE = ROOT / "deploy/dev/images/pause/pause.c"
PAUSE_IMAGE = "localhost/post-service-pause:1"


def build_pause_archive(workdir: Path) -> Path:
    """Compile the pause binary and write its image archive (once per source change)."""
    digest = hashlib.sha256(PAUSE_SOURCE.read_bytes()).hexdigest()[:12]
    archive = workdir / f"pause-{digest}.tar"
    if archive.exists():
        return archive
    workdir.mkdir(parents=True, exist_ok=True)
    binary = workdir / "pause"
    subprocess.run(
        ["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(binary), str(PAUSE_SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(["strip", str(binary)], check=True, capture_output=True, timeout=60)
    partial = archive.with_suffix(".partial")
    write_image_archive(partial, PAUSE_IMAGE, {"pause": binary.read_bytes()}, ["/pause"])
    partial.replace(archive)
    return archive


def write_image_archive(
    path: Path, reference: str, files: dict[str, bytes], entrypoint: list[str]
) -> None:
    """A one-layer image holding ``files`` (executables at the root), in ``docker save`` form."""
    layer = _tar_bytes({name: (data, 0o755) for name, data in files.items()})
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [reference], "Layers": [f"{layer_digest}/layer.tar"]}]
    ).encode()
    path.write_bytes(
        _tar_bytes(
            {
                f"{layer_digest}/layer.tar": (layer, 0o644),
                config_name: (config, 0o644),
                "manifest.json": (manifest, 0o644),
            }
        )
    )


def _tar_bytes(members: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
