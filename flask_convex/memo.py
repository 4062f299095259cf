"""`Memo`: a bounded dict of values a process's requests make again and again."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """A dict of at most `limit` entries, emptied whole when full.

    For values cheap to make again but asked for on every request (value digests,
    verified references, rendered tags): emptying at once costs one remake of each,
    where an LRU would reorder its entries on every read.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: K, value: V) -> V:
        """Remember `value` for `key`, first emptying the memo if it is full; return `value`."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
