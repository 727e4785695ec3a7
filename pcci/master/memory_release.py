"""Memory given back to the system after many readers leave.

glibc keeps freed heap memory for reuse instead of returning it: after 1,000 idle event
stream followers closed, the master stayed at 138 MB (from 43 MB before they came);
``malloc_trim(0)`` brought it back to 73 MB (bench/idle_followers.py, docs/performance.md).
So once every ``FOLLOWERS_PER_TRIM`` followers have left, one trim runs a second later
(later leavers join the same trim). Where there is no glibc (musl, macOS) this does nothing.

The worker port does the same after handshakes (``HANDSHAKES``): each TLS handshake
leaves freed memory behind (with 3,000 workers connected to an in-process master, a trim
gave back 3-6 KB a connection; a real master with 10,000 held 5-6 MB less with this and
two smaller changes: docs/performance.md, "Scale and memory").
"""

import ctypes

import gevent

FOLLOWERS_PER_TRIM = 100
TRIM_DELAY_SECONDS = 1.0


def _malloc_trim():
    """glibc's malloc_trim, or None."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim     # by name: find_library would run ldconfig
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class Releaser:
    """Counts readers that left (or handshakes that ended); trims the heap after every
    ``every`` of them."""

    def __init__(self, trim=None, every: int = FOLLOWERS_PER_TRIM, delay: float = TRIM_DELAY_SECONDS):
        self.trim = trim
        self.every = every
        self.delay = delay
        self.left = 0
        self.pending = None

    def reader_left(self) -> None:
        self.left += 1
        if self.left >= self.every and self.trim is not None and self.pending is None:
            self.left = 0
            self.pending = gevent.spawn_later(self.delay, self._run)

    def _run(self):
        self.pending = None
        self.trim(0)


RELEASER = Releaser(_malloc_trim())
# Worker connections whose handshake ended (done or failed): a trim a second after every 500.
HANDSHAKES = Releaser(RELEASER.trim, every=500)
