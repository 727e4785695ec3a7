"""Pool ids: UUIDv7, so they are unique, sort by submit time, and carry the millisecond.

The original PCCI used the submit time in milliseconds as the pool id; its TODO asked
for uuids. A UUIDv7 is both: its first 48 bits are the Unix time in milliseconds.
"""

import os
import uuid


class PoolIdMaker:
    """Makes strictly increasing UUIDv7s, even for several pools in one millisecond."""

    def __init__(self, random_bytes=os.urandom):
        self._random_bytes = random_bytes
        self._last_ms = -1
        self._sequence = 0

    def make(self, now_ms):
        if now_ms <= self._last_ms:
            now_ms = self._last_ms
            self._sequence += 1
            if self._sequence > 0xFFF:
                now_ms += 1
                self._sequence = 0
        else:
            self._sequence = int.from_bytes(self._random_bytes(2), "big") & 0x3FF
        self._last_ms = now_ms
        tail = int.from_bytes(self._random_bytes(8), "big") & ((1 << 62) - 1)
        value = (now_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | self._sequence << 64 | 0b10 << 62 | tail
        return str(uuid.UUID(int=value))


def timestamp_ms(pool_id):
    """The submit time carried by a pool id, or None if it is not a UUIDv7."""
    try:
        value = uuid.UUID(pool_id)
    except (ValueError, TypeError, AttributeError):
        return None
    if value.version != 7:
        return None
    return value.int >> 80


def is_pool_id(text):
    return timestamp_ms(text) is not None
