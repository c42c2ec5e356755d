"""Session fixtures for the Python base image that ocibuild assembles (tests/support/_pybase.py).

A conftest takes them by importing them; each worker builds the base once, in its own
session temp dir, with its own layer cache.
"""

from __future__ import annotations

import pytest

from tests.support import BaseImage, Registry
from tests.support._pybase import PythonBase, make_python_base, push_python_base

__all__ = ["python_base", "python_base_in_registry"]


@pytest.fixture(scope="session")
def python_base(tmp_path_factory: pytest.TempPathFactory, base_layout: BaseImage) -> PythonBase:
    """Debian's Python 3.11 with pip and setuptools on the busybox base: a layout and an archive."""
    workdir = tmp_path_factory.mktemp("python-base")
    return make_python_base(workdir, base_layout, workdir / "cache")


@pytest.fixture(scope="session")
def python_base_in_registry(python_base: PythonBase, registry: Registry) -> str:
    """The Python base in the plain test registry: `HOST/ocibuild-test/python:3.11@sha256:...`."""
    return push_python_base(python_base, registry.host, python_base.layout.parent / "cache")
