"""The master's frame decoder: a large result's output goes to files as it arrives.

A worker sends a result of many megabytes as a blob frame (``pcci.framing``): a small
JSON head, then the output's bytes. ``FrameDecoder`` would buffer the whole frame and
then decode it into a str: the output twice, for a moment, on top of everything else
the master holds. ``SpillingDecoder`` takes a result frame over ``SPILL_OVER_BYTES``
as its head arrives and writes each text blob over ``KEEP_BYTES`` to a ``SpilledText``
piece by piece (what one read of the socket brings); smaller blobs (a short stderr)
are decoded as before. The message it returns has a ``SpilledText`` where the text
would be. Every other frame, and a result that carries raw bytes, is decoded as before.

The frame's limits hold as before, checked before its bytes are taken: its length
against ``max_frame_bytes``, its blob sizes against its length (``blob_payload_start``).
A file that cannot be written (a full disk) ends the connection like a lost one: the
worker keeps the result in its spool and sends it again.
"""

from .. import protocol
from ..framing import BLOB_MARK, HEADER, ConnectionClosed, FrameDecoder, blob_payload_start
from ..spilled_text import SpillWriter

# A result frame over this many bytes is spilled; smaller ones are decoded in memory.
SPILL_OVER_BYTES = 1024 * 1024
# A blob of at most this many bytes stays in memory (and becomes a str) even so.
KEEP_BYTES = 256 * 1024


class SpillingDecoder(FrameDecoder):
    divert_over = SPILL_OVER_BYTES

    def __init__(self, max_frame_bytes, directory):
        super().__init__(max_frame_bytes)
        self.directory = directory
        self._spill = None          # the result frame being taken: a _Spill

    def feed(self, data):
        messages = []
        if self._spill is not None:
            used = self._take(data)
            if self._spill.missing:
                return messages
            messages.append(self._spill.message)
            self._spill = None
            data = memoryview(data)[used:]
        return messages + super().feed(data)

    def between_frames(self):
        return self._spill is None and super().between_frames()

    def _divert(self, length):
        if len(self._buffer) <= HEADER.size:
            return False
        with memoryview(self._buffer) as view:
            if view[HEADER.size] != BLOB_MARK:
                return False
            with view[HEADER.size:] as payload:
                start = blob_payload_start(payload, length)
        if start is None:
            return False        # its JSON has not all come yet
        message, blobs, at = start
        if message["type"] != protocol.RESULT or any(len(blob) == 3 for blob in blobs):
            return False
        try:
            self._spill = _Spill(message, [(blob[0], blob[1]) for blob in blobs], self.directory)
        except OSError as exc:
            raise self._cannot_write(exc)
        rest = bytes(self._buffer[HEADER.size + at:])
        del self._buffer[:]
        self._take(rest)        # less than the frame: it did not fit in the buffer
        return True

    def _take(self, data):
        try:
            return self._spill.take(data)
        except OSError as exc:
            self._spill.discard()
            self._spill = None
            raise self._cannot_write(exc)

    def _cannot_write(self, exc):
        return ConnectionClosed("cannot write a large result's output to %s: %s" % (self.directory, exc))


class _Spill:
    """One result frame's blobs, taken as they come."""

    def __init__(self, message, blobs, directory):
        self.message = message
        self.blobs = blobs          # [(field, size)] still to come, the current one first
        self.directory = directory
        self.missing = sum(size for _, size in blobs)
        self._writer = None         # a SpillWriter, or a bytearray for a small blob
        self._left = 0              # bytes of the current blob still to come
        self._next()

    def _next(self):
        """Start the next blob; fill in the empty ones at once."""
        while self.blobs and self._left == 0:
            name, size = self.blobs[0]
            if size == 0:
                self.message[name] = ""
                self.blobs.pop(0)
                continue
            self._writer = bytearray() if size <= KEEP_BYTES else SpillWriter(self.directory)
            self._left = size

    def take(self, data):
        """Bytes of ``data`` taken (it may hold the next frame's start)."""
        used = 0
        view = memoryview(data)
        while self._left and used < len(view):
            count = min(self._left, len(view) - used)
            piece = view[used:used + count]
            if isinstance(self._writer, bytearray):
                self._writer += piece
            else:
                self._writer.write(piece)
            used += count
            self._left -= count
            self.missing -= count
            if self._left == 0:
                self._blob_done()
        return used

    def _blob_done(self):
        name, _ = self.blobs.pop(0)
        writer, self._writer = self._writer, None
        self.message[name] = (str(writer, "utf-8", "replace") if isinstance(writer, bytearray)
                              else writer.finish())
        self._next()

    def discard(self):
        if self._writer is not None and not isinstance(self._writer, bytearray):
            self._writer.discard()
