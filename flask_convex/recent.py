"""Recent poll answers, shared by one process's requests, so many pollers cost one call.

When several pages poll the same query with the same token (a public list open in
many tabs), the first poll of a window asks Convex and the others learn from its
answer that nothing changed. An entry only ever vouches for "unchanged": a page
showing something else is asked of Convex (it may be newer than the entry: a
server action's answer). Any mutation or action sent through this process
forgets every entry, so a change made here is never hidden by one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final

LIMIT: Final = 4096
"""Entries kept at most; the oldest go first."""


class RecentAnswers:
    """The hash each recently polled query showed, and when it was fetched."""

    def __init__(self) -> None:
        self._seen: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0
        """Counts `forget` calls, so an answer fetched across a write is not remembered."""

    def unchanged(self, key: Hashable, shown: str, window: float) -> bool:
        """Whether `key` was fetched less than `window` seconds ago and then showed `shown`."""
        seen = self._seen.get(key)
        return seen is not None and seen[0] == shown and time.monotonic() - seen[1] < window

    def remember(self, key: Hashable, shown: str, generation: int) -> None:
        """Record what a query fetched just now showed, unless something was written since
        `generation` was read: the answer may predate the write."""
        with self._lock:
            if generation != self.generation:
                return
            self._seen[key] = (shown, time.monotonic())
            self._seen.move_to_end(key)
            while len(self._seen) > LIMIT:
                self._seen.popitem(last=False)

    def forget(self) -> None:
        """Drop every entry: something was written."""
        with self._lock:
            self._seen.clear()
            self.generation += 1
