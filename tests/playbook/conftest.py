"""Paths in the corpora's messages are relative to tests/playbook, so expected files do not depend on the
checkout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def in_tests_dir() -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(HERE)
    try:
        yield
    finally:
        os.chdir(previous)
