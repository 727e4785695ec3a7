"""What a job's output is as text, and what an offset into it counts (pure).

A job's stream is bytes; what the API, the dashboard and the CLI show is its text: the
bytes decoded as UTF-8, each invalid sequence becoming U+FFFD (``decode``). A stream
is forwarded in pieces cut on whole characters (``whole_characters``), so the pieces,
decoded one at a time and joined, are exactly the decoding of the whole stream.

Two offsets, never mixed:

- a **byte offset** counts the worker's raw bytes. Only the worker and the master use
  it, on their link (``output``'s ``offset`` and ``length``, ``output_from``), because
  the worker resends from its capture, which holds bytes;
- a **text offset** counts characters (code points) of the decoded text. The ``offset``
  of an ``output`` event (``GET /pool/ID/events``) is one, and the CLI counts what it
  has printed in them (``text_end``). It is never derived from re-encoding the text: a
  byte that is not UTF-8 is one byte on the worker but three in U+FFFD's UTF-8.
"""


def decode(data: bytes) -> str:
    """A stream's bytes (or a piece cut by ``whole_characters``) as text."""
    return data.decode("utf-8", "replace")


def whole_characters(data: bytes, at_end: bool) -> int:
    """How many leading bytes of ``data`` end on a whole UTF-8 character: an incomplete
    sequence at the end waits for its remaining bytes, unless the stream ended."""
    if at_end:
        return len(data)
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)            # ASCII: whatever precedes it is complete too
        if byte >= 0xC0:                # a lead byte: does its sequence fit?
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) - back if needed > back else len(data)
    return len(data)                    # continuation bytes only: invalid anyway, send them


def text_end(offset: int, text: str) -> int:
    """The text offset where a piece starting at ``offset`` ends."""
    return offset + len(text)
