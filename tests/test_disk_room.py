"""The account of the master's disk that uploads and fetches share (pcci/master/disk_room.py)."""

import pytest

from pcci.errors import StorageFull
from pcci.master.disk_room import DiskRoom, room_problem


def test_room_counts_what_other_streams_will_still_write():
    assert room_problem(free=200, promised=0, wanted=100, reserve=64) is None
    assert "promised" in room_problem(free=200, promised=50, wanted=100, reserve=64)


def test_a_promise_shrinks_as_bytes_land_and_ends_with_the_stream(tmp_path):
    room = DiskRoom(str(tmp_path), reserve=0)
    free = room.free_bytes()
    room.claim("a", free * 3 // 4)
    with pytest.raises(StorageFull):
        room.claim("b", free * 3 // 4)
    room.claim("a", free * 3 // 4)          # a stream's own promise is not counted against it
    room.wrote("a", free * 5 // 8)          # (the disk's free space would show them now)
    room.claim("b", free // 2)
    room.release("a")
    room.release("b")
    assert room.promised == {}
