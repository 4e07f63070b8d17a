"""A structure built once and shared by threads, and a background build that steps aside in pieces.

:class:`SharedBuild` is the one lock under which a structure is built (the callers arriving meanwhile wait for that
build and take it) and the count of those callers, so that a background builder pausing between pieces
(:func:`in_pieces`) stops pausing as soon as someone waits for its result: a pause would only keep them waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class SharedBuild:
    """One build at a time, and how many callers are building or waiting for the build."""

    def __init__(self) -> None:
        self.callers = 0
        self._lock = threading.Lock()
        self._count = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Held while building (or waiting to build): check again inside whether it was built meanwhile."""
        with self._count:
            self.callers += 1
        try:
            with self._lock:
                yield
        finally:
            with self._count:
                self.callers -= 1

    def unless_awaited(self, pause: Callable[[], None] | None) -> Callable[[], None] | None:
        """``pause`` as the builder calls it: skipped while another caller waits for the build."""
        if pause is None:
            return None

        def paused() -> None:
            if self.callers <= 1:  # only the builder itself
                pause()

        return paused


def in_pieces(items: Iterable[T], every: int, pause: Callable[[], None] | None) -> Iterator[T]:
    """The items, with ``pause()`` after every ``every`` of them has been taken."""
    for count, item in enumerate(items, 1):
        yield item
        if pause is not None and not count % every:
            pause()
