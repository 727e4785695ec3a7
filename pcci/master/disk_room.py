"""Room on the master's disk for files that arrive in pieces: uploads (``blob_store``) and
fetched files (``fetch_sink``), both under ``state_dir``.

Each stream says, before its first byte is stored, how many bytes it has still to write;
it is let in only if the free disk, less what every other stream under way has still to
write, holds that and ``DISK_RESERVE_BYTES`` more (the pool store and the logs need
room too: a full disk stops the master from saving pools). Without the streams' promises
two uploads (or a fetch from many workers) that each fit alone would fill the disk
together, since each saw the same free space.
"""

import os
from typing import Hashable, Optional

from ..errors import StorageFull

# Room left on the disk after every stream under way: the store and the logs need some too.
DISK_RESERVE_BYTES = 64 * 1024 * 1024


def room_problem(free: int, promised: int, wanted: int, reserve: int) -> Optional[str]:
    """Why ``wanted`` more bytes do not fit when ``free`` bytes are free and other streams
    have ``promised`` still to write; None if they do (pure)."""
    if free - promised >= wanted + reserve:
        return None
    return ("the master's disk has %d bytes free, %d of them promised to other uploads and fetches under way; "
            "this one needs %d more (and %d to spare)" % (free, min(promised, free), wanted, reserve))


class DiskRoom:
    def __init__(self, directory, reserve=DISK_RESERVE_BYTES):
        self.directory = directory
        self.reserve = reserve
        self.promised = {}          # stream key -> bytes it has still to write

    def free_bytes(self):
        disk = os.statvfs(self.directory)
        return disk.f_bavail * disk.f_frsize

    def claim(self, key: Hashable, wanted: int, promise: Optional[int] = None) -> None:
        """Promise the stream ``key`` ``promise`` bytes (default ``wanted``; replacing what it
        had) if ``wanted`` fit beside the other streams' promises and the reserve; else
        StorageFull. An upload needs room for its whole file but promises only its body's
        bytes: one that stops half way holds no more than it brought."""
        promised = sum(left for other, left in self.promised.items() if other != key)
        problem = room_problem(self.free_bytes(), promised, wanted, self.reserve)
        if problem is not None:
            raise StorageFull(problem)
        self.promised[key] = wanted if promise is None else min(promise, wanted)

    def wrote(self, key: Hashable, count: int) -> None:
        """``count`` of the stream's promised bytes are on the disk now: free space shows them."""
        if key in self.promised:
            self.promised[key] = max(0, self.promised[key] - count)

    def release(self, key: Hashable) -> None:
        self.promised.pop(key, None)
