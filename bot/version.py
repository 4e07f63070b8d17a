"""The installed distribution's version (``accessbot --version``, the start-up line)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version


def version() -> str:
    try:
        return distribution_version("accessbot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
