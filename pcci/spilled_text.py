"""Text held in a file with no name instead of in memory: a job's output of many megabytes,
from the link to the store and back to an answer, never one Python string.

``SpillWriter`` takes UTF-8 bytes in pieces of any size -- bytes that are not UTF-8 become
U+FFFD, as the frame decoder made them for a text blob -- writes them to an unnamed file
(``O_TMPFILE``: nothing is left behind by a crash) and counts their characters. ``finish``
gives the ``SpilledText``: ``len`` is its characters and it slices by characters like a
``str`` (so the live output feeds read it as they read a result's text), and it hands out
its bytes (``pieces``, for the store) and its text (``text_pieces``, for a streamed answer)
in bounded pieces. Reads are ``os.pread``: the store's thread and the event loop may read
one at the same time. The file goes when the last reference does.
"""

import bisect
import codecs
import os

# The bytes of one piece handed out: what a reader holds of a text at once.
PIECE_BYTES = 1024 * 1024
# A (characters, bytes) mark is kept at least this many bytes apart: slicing a text that
# is not ASCII decodes from the mark before the slice, not from the start.
MARK_BYTES = 64 * 1024


class SpillWriter:
    """A SpilledText being written, in pieces; ``text`` reads what is written so far (a
    running job's live output is read by followers while it grows)."""

    def __init__(self, directory=None):
        import tempfile     # here: the worker imports this module (protocol), and tempfile brings shutil
        # Unbuffered: what is written is at once in the file, for ``text``'s preads.
        self.text = SpilledText(tempfile.TemporaryFile(dir=directory, buffering=0), 0, 0, [0], [0])
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data):
        """UTF-8 bytes, cut anywhere."""
        self.write_text(self._decoder.decode(data))

    def write_text(self, text):
        """Text (it must encode as UTF-8: checked with ``protocol.storable`` on the way in)."""
        if not text:
            return
        encoded = text.encode("utf-8")
        spilled = self.text
        view = memoryview(encoded)
        while view:
            view = view[spilled._file.write(view):]
        spilled.size += len(encoded)
        spilled.chars += len(text)
        if spilled.size - spilled._mark_bytes[-1] >= MARK_BYTES:
            spilled._mark_chars.append(spilled.chars)
            spilled._mark_bytes.append(spilled.size)

    def finish(self):
        self.write_text(self._decoder.decode(b"", final=True))
        return self.text

    def discard(self):
        self.text._file.close()


class SpilledText:
    __slots__ = ("_file", "size", "chars", "_mark_chars", "_mark_bytes")

    def __init__(self, file, size, chars, mark_chars, mark_bytes):
        self._file = file
        self.size = size
        self.chars = chars
        self._mark_chars = mark_chars
        self._mark_bytes = mark_bytes

    def __len__(self):
        return self.chars

    def __repr__(self):
        return "SpilledText(%d bytes, %d characters)" % (self.size, self.chars)

    def __getitem__(self, key):
        """A slice of the text, by characters, as a str (a piece of it: the caller bounds it)."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a SpilledText is read in slices")
        start, stop, _ = key.indices(self.chars)
        if stop <= start:
            return ""
        if self.size == self.chars:         # ASCII: a character is a byte
            return self._read(start, stop - start).decode("ascii")
        first = bisect.bisect_right(self._mark_chars, start) - 1
        after = bisect.bisect_left(self._mark_chars, stop)
        begin = self._mark_bytes[first]
        end = self._mark_bytes[after] if after < len(self._mark_bytes) else self.size
        base = self._mark_chars[first]
        return self._read(begin, end - begin).decode("utf-8")[start - base:stop - base]

    def pieces(self, size=PIECE_BYTES):
        """Its UTF-8 bytes, in pieces of ``size`` (not cut at characters)."""
        for offset in range(0, self.size, size):
            yield self._read(offset, min(size, self.size - offset))

    def text_pieces(self, size=PIECE_BYTES):
        """Its text, in pieces of at most ``size`` bytes' worth, each whole characters."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        for piece in self.pieces(size):
            text = decoder.decode(piece)
            if text:
                yield text

    def memory_bytes(self):
        """What it holds in memory: its marks, not its text."""
        return 64 + 16 * len(self._mark_chars)

    def text(self):
        """All of it as one str: for a small one, or a test."""
        return "".join(self.text_pieces())

    def _read(self, offset, length):
        parts = []
        while length > 0:
            data = os.pread(self._file.fileno(), length, offset)
            if not data:
                raise OSError("the spilled text's file is shorter than it was written")
            parts.append(data)
            offset += len(data)
            length -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def spill_pieces(pieces, directory=None):
    """A SpilledText of UTF-8 byte pieces (rows read back from the store)."""
    writer = SpillWriter(directory)
    try:
        for piece in pieces:
            writer.write(piece)
        return writer.finish()
    except BaseException:
        writer.discard()
        raise


def text_size(text):
    """What a job's output holds, in memory or, for a SpilledText, on disk: the caches that
    keep ended pools count their files too, so the disk those take is bounded as well."""
    return len(text) if isinstance(text, str) else text.size + text.memory_bytes()
