"""The last few things that ended, kept in memory within a count and a byte budget."""

import collections
from typing import Callable, Hashable, Iterator, Optional


class BoundedRecent:
    """Insertion-ordered; adding one drops the oldest until both limits hold again, but
    never the newest ``min_kept`` (one large item may then exceed ``max_bytes`` alone).
    ``size(item)`` is its bytes, taken once, when it is added."""

    def __init__(self, max_count: int, max_bytes: int, size: Callable[[object], int], min_kept: int = 0):
        self.max_count, self.max_bytes, self.min_kept = max_count, max_bytes, min_kept
        self._size = size
        self._items = collections.OrderedDict()     # key -> (item, its size)
        self.bytes = 0

    def add(self, key: Hashable, item: object) -> None:
        self.pop(key)
        size = self._size(item)
        self._items[key] = (item, size)
        self.bytes += size
        while len(self._items) > self.min_kept and (len(self._items) > self.max_count or self.bytes > self.max_bytes):
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def get(self, key: Hashable) -> Optional[object]:
        entry = self._items.get(key)
        return entry[0] if entry is not None else None

    def pop(self, key: Hashable) -> Optional[object]:
        entry = self._items.pop(key, None)
        if entry is None:
            return None
        self.bytes -= entry[1]
        return entry[0]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def values(self) -> list:
        return [item for item, _ in self._items.values()]

    def __contains__(self, key) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
