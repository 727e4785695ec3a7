"""The wire format between master and worker: length-prefixed JSON frames.

Each frame is::

    +----------------------+--------------------------------------+
    | length: 4 bytes,     | payload: `length` bytes of UTF-8     |
    | unsigned big-endian  | JSON, one object with a "type" key    |
    +----------------------+--------------------------------------+

The original PCCI ended each message with an end-of-message code; a length prefix
needs no escaping and lets the reader refuse an oversized frame before buffering it.

Limit: a frame's payload may not exceed ``max_frame_bytes`` (16 MiB by default).

A payload may instead carry byte strings beside a small JSON object (a result's output,
sent as the job wrote it, so a large one is held once on each side, not as bytes, text
and JSON)::

    +------+--------------------+-----------------+---------+---------+-----
    | 0x00 | n: 4 bytes, big-   | n bytes: JSON,   | blob 1  | blob 2  | ...
    |      | endian             | with "blobs":    |         |         |
    |      |                    | [[name, size]..] |         |         |
    +------+--------------------+-----------------+---------+---------+-----

A JSON payload starts with ``{``, so the first byte tells them apart. Each blob is the
UTF-8 of the field it names (bytes that are not UTF-8 become U+FFFD, as the worker
decoded them before), and its sizes must add up to the payload exactly. Only a peer that
named ``blobs`` among its features is sent one (pcci.protocol.BLOB_FRAMES). A blob named
``[name, size, "bytes"]`` is a file's bytes (a copy's chunk): its field is those bytes,
never decoded, and only a peer that named ``raw_chunks`` is sent one
(pcci.protocol.RAW_CHUNKS).

Two kinds of failure, kept apart on purpose:

* ``FrameError`` -- the peer sent garbage: a length over the limit, bytes that are not
  UTF-8 JSON, or JSON that is not an object with a string "type". The connection is
  closed with one log line; the peer is not trusted to resynchronise.
* ``ConnectionClosed`` -- the peer went away (EOF or a socket error, possibly in the
  middle of a frame). A worker reconnects; the master marks the worker offline.

``encode`` and ``FrameDecoder`` are pure; the socket side is ``pcci.link``.
"""

import json
import struct

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024


class FrameError(Exception):
    """The peer sent something that is not a valid frame."""


class ConnectionClosed(Exception):
    """The peer went away."""


def encode(message):
    payload = encode_payload(message)
    return HEADER.pack(len(payload)) + payload


def encode_payload(message):
    """A frame's payload alone: a large one is sent after ``HEADER.pack(len(payload))``
    without joining the two (a copy of a result of many megabytes)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


BLOB_MARK = 0
MAX_BLOBS = 8
MAX_BLOB_NAME_CHARS = 64
# A blob's third element: its field is the bytes themselves, not their text.
RAW_BLOB = "bytes"


def encode_blob_payload(message, blobs, raw=False):
    """A payload of ``message`` and the byte strings ``blobs`` ((name, bytes-like) pairs)
    beside it, as a tuple of parts to be written one after the other: the blobs are not
    copied (a job's output of many megabytes). ``raw``: the receiver gets them as bytes."""
    head = blob_payload_head(message, [(name, len(data)) for name, data in blobs], raw)
    return (head,) + tuple(data for _, data in blobs)


def blob_payload_head(message, sizes, raw=False):
    """The part of a blob payload before its blobs, for blobs of these (name, size)s."""
    named = [[name, size, RAW_BLOB] if raw else [name, size] for name, size in sizes]
    head = encode_payload(dict(message, blobs=named))
    return bytes([BLOB_MARK]) + HEADER.pack(len(head)) + head


def payload_size(payload):
    """The length of a payload given as bytes or as a tuple of parts."""
    return sum(len(part) for part in payload) if isinstance(payload, tuple) else len(payload)


def decode_payload(view):
    """The message in one payload (bytes-like), JSON or JSON and blobs; FrameError if neither."""
    if len(view) and view[0] == BLOB_MARK:
        return decode_blobs(view)
    try:
        text = str(view, "utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError("payload is not UTF-8 JSON: %s" % exc)
    return decode_text(text)


def _usable_blob(entry, message):
    return (isinstance(entry, list) and len(entry) in (2, 3) and isinstance(entry[0], str)
            and 0 < len(entry[0]) <= MAX_BLOB_NAME_CHARS and entry[0] not in message
            and type(entry[1]) is int and entry[1] >= 0 and (len(entry) == 2 or entry[2] == RAW_BLOB))


def blob_payload_start(view, length):
    """(message, blobs, where the blobs start) of a blob payload of ``length`` bytes whose
    start is ``view``: FrameError if it is not one, None if ``view`` ends before its JSON."""
    start = 1 + HEADER.size
    if len(view) < start:
        if length < start:
            raise FrameError("blob payload shorter than its header")
        return None
    (head_size,) = HEADER.unpack_from(view, 1)
    at = start + head_size
    if at > length:
        raise FrameError("blob payload's JSON runs past its end")
    if len(view) < at:
        return None
    try:
        message = decode_text(str(view[start:at], "utf-8"))
    except UnicodeDecodeError as exc:
        raise FrameError("blob payload's JSON is not UTF-8: %s" % exc)
    blobs = message.pop("blobs", None)
    if (not isinstance(blobs, list) or len(blobs) > MAX_BLOBS or not all(_usable_blob(b, message) for b in blobs)
            or len({b[0] for b in blobs}) != len(blobs)):
        raise FrameError("blob payload without a usable 'blobs' list of [name, size]")
    if at + sum(b[1] for b in blobs) != length:
        raise FrameError("blob payload's sizes do not add up to its length")
    return message, blobs, at


def decode_blobs(view):
    """A payload of JSON and blobs: the message, each blob decoded as text into its field
    (or, marked ``RAW_BLOB``, copied into it as bytes)."""
    view = memoryview(view)
    message, blobs, at = blob_payload_start(view, len(view))
    for blob in blobs:
        name, size = blob[0], blob[1]
        # Bytes are copied out once: the decoder's buffer moves on under a view of it.
        message[name] = bytes(view[at:at + size]) if len(blob) == 3 else str(view[at:at + size], "utf-8", "replace")
        at += size
    return message


def encoder_varying(common, key):
    """encode(dict(common, key=value)) for many values, serialising `common` only once:
    a fan-out sends one command to thousands of workers, differing only in the job id."""
    if not common:
        raise ValueError("common fields must not be empty")
    tail = json.dumps(common, separators=(",", ":"), ensure_ascii=False)[1:]
    head = "{%s:" % json.dumps(key)

    def encode_with(value):
        payload = (head + json.dumps(value, ensure_ascii=False) + "," + tail).encode("utf-8")
        return HEADER.pack(len(payload)) + payload
    return encode_with


class FrameDecoder:
    """Turns a byte stream into messages; feed() returns every message completed so far."""

    # A frame over this many bytes is offered to ``_divert`` before it is buffered: a
    # subclass may take it as it arrives (the master spills a large result to a file).
    divert_over = None

    def __init__(self, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()

    def feed(self, data):
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self.max_frame_bytes:
                raise FrameError("frame of %d bytes is over the %d byte limit" % (length, self.max_frame_bytes))
            end = HEADER.size + length
            if len(self._buffer) < end:
                if self.divert_over is not None and length > self.divert_over and self._divert(length):
                    continue        # the buffer's rest went to the subclass
                break
            # Decoded from the buffer in place, and the buffer let go before the JSON is
            # parsed: a large frame is held twice at most, not four times.
            with memoryview(self._buffer) as view:
                if length and view[HEADER.size] == BLOB_MARK:
                    # Blobs become text straight from the buffer: the frame and its text, once each.
                    with view[HEADER.size:end] as payload:
                        message = decode_blobs(payload)
                    text = None
                else:
                    try:
                        text = str(view[HEADER.size:end], "utf-8")
                    except UnicodeDecodeError as exc:
                        raise FrameError("payload is not UTF-8 JSON: %s" % exc)
            del self._buffer[:end]
            messages.append(decode_text(text) if text is not None else message)
        return messages

    def between_frames(self):
        """Whether every byte fed so far is in a message already given: no frame begun."""
        return not self._buffer

    def _divert(self, length):
        """Take the frame of ``length`` starting in the buffer, and the buffer's rest, or return False."""
        return False


def reject_non_finite(text):
    """json's parse_constant / parse_float hook: NaN, Infinity and 1e400 are not JSON numbers
    (they would come back out as words no JSON parser reads)."""
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("%s is not a finite number" % text)
    return value


# Made once: json.loads with hooks would build a new decoder for every frame.
_FINITE_DECODER = json.JSONDecoder(parse_constant=reject_non_finite, parse_float=reject_non_finite)


def loads(text):
    """json.loads that accepts only finite numbers."""
    return _FINITE_DECODER.decode(text)


def decode_text(text):
    try:
        message = loads(text)
    except (ValueError, RecursionError) as exc:
        raise FrameError("payload is not UTF-8 JSON: %s" % exc)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("payload is not a JSON object with a string 'type'")
    return message
