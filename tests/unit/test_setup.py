"""The environment set-up installs what the devenv needs; during tests nothing installs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from devenv.apt import AptError, apt_install
from devenv.setup import PACKAGES

DEVENV = Path(__file__).resolve().parents[2] / "devenv"


def packages_the_devenv_installs() -> set[str]:
    named: set[str] = set()
    for source in DEVENV.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "apt_install":
                named |= {
                    arg.value
                    for arg in node.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                }
    return named


def test_every_package_a_devenv_module_may_install_is_installed_by_the_set_up() -> None:
    named = packages_the_devenv_installs()
    assert named, "the scan found the apt_install calls"
    assert named <= set(PACKAGES), named - set(PACKAGES)


def test_a_fixture_cannot_install_a_package() -> None:
    with pytest.raises(AptError, match=r"python -m devenv\.setup"):
        apt_install("some-package", why="a fixture")
