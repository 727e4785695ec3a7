"""The relay connection between two workers: a child pulls a copy's bytes from its parent.

Over TLS (the parent's self-made certificate, pinned by the fingerprint the master gave
the child), the child sends one frame (pcci.framing: 4-byte length, JSON) of at most
``MAX_REQUEST_BYTES``::

    {"type": "relay_pull", "job": PARENT'S JOB ID, "child": NAME, "sha256": HEX,
     "expires": MS, "ticket": HEX, "offset": N}

and the parent answers with one frame, ``{"type": "relay_ok", "bytes": SIZE}`` followed by
the file's raw bytes from ``offset`` to SIZE as they are written on the parent (no
framing: the stream ends when the file does), or ``{"type": "error", "code", "message"}``
and closes. Garbage (a frame too long, not JSON, a field missing) closes the connection
too: the child then takes its copy from the master, which is always allowed.
"""

import json

from .framing import HEADER, ConnectionClosed, FrameError, encode

PULL = "relay_pull"
OK = "relay_ok"
ERROR = "error"
MAX_REQUEST_BYTES = 4096
PULL_FIELDS = dict(job=str, child=str, sha256=str, expires=int, ticket=str, offset=int)


def pull(job, child, sha256, expires, ticket, offset):
    return encode({"type": PULL, "job": job, "child": child, "sha256": sha256, "expires": expires,
                   "ticket": ticket, "offset": offset})


def ok(size):
    return encode({"type": OK, "bytes": size})


def error(code, message):
    return encode({"type": ERROR, "code": code, "message": message})


def _read_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        piece = sock.recv(count - len(data))
        if not piece:
            raise ConnectionClosed("the relay peer closed the connection")
        data += piece
    return bytes(data)


def read_message(sock, limit=MAX_REQUEST_BYTES):
    """One frame's JSON object; FrameError for garbage, ConnectionClosed at EOF."""
    (length,) = HEADER.unpack(_read_exactly(sock, HEADER.size))
    if length > limit:
        raise FrameError("a relay frame of %d bytes, over the %d allowed" % (length, limit))
    try:
        message = json.loads(_read_exactly(sock, length).decode("utf-8"))
    except ValueError:
        raise FrameError("a relay frame that is not UTF-8 JSON")
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("a relay frame that is not an object with a type")
    return message


def fields_problem(message, fields):
    """Which field is missing or of the wrong type, or None."""
    for name, kind in fields.items():
        value = message.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return "field %r is missing or has the wrong type" % name
    return None
