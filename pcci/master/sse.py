"""Server-Sent Events: an event log written to one follower as ``text/event-stream``.

Each follower is one greenlet writing from the shared log (``event_log.EventLog``) at
its own pace: a slow one falls behind alone, and one that stops reading is cut off
by the API socket's idle timeout. A comment line goes out after ``KEEPALIVE_SECONDS``
without events, so proxies do not close a quiet stream. The stream ends after the
log is closed (a pool's ``done``).
"""

import json

from .event_log import parse_cursor

KEEPALIVE_SECONDS = 15.0
# Events are joined into one write up to this size: small events leave together, and a
# burst of large ones is never copied into one big buffer.
BATCH_BYTES = 256 * 1024
# The client's reconnection delay, sent once (SSE's retry field).
RETRY_MS = 2000


def frame(event_id, kind, data):
    """One event in the text/event-stream format (JSON text never holds a raw newline)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return "id: %s\nevent: %s\ndata: %s\n\n" % (event_id, kind, text) if event_id else \
        "event: %s\ndata: %s\n\n" % (kind, text)


def cursor(request_headers_get, query):
    """(generation, seq) the follower already has, from Last-Event-ID or ?since=, or (None, 0).
    event_log.BadCursor for one that is not an event id."""
    text = request_headers_get("Last-Event-ID") or query.get("since") or ""
    return parse_cursor(text) if text.strip() else (None, 0)


class SharedFrames:
    """Each entry's frame, made once for all the followers of a log: the cluster's events
    go to every open dashboard, and rendering a worker for each of them cost the master
    a third more CPU with ten dashboards open (bench/dashboard.py). Holds the latest
    ``limit`` frames."""

    def __init__(self, limit=4096):
        self.frames = {}
        self.limit = limit

    def get(self, seq, make, *args):
        """The entry's frame: kept, or ``make(*args)`` now and kept."""
        text = self.frames.get(seq)
        if text is None:
            text = self.frames[seq] = make(*args)
            if len(self.frames) > self.limit:
                for old in list(self.frames)[:self.limit // 2]:
                    del self.frames[old]
        return text


def _entry_frame(log, render, seq, kind, data):
    """One log entry as its event's frame; "" for an entry ``render`` leaves out."""
    rendered = render(kind, data)
    return "" if rendered is None else frame(log.event_id(seq), *rendered)


def stream(log, position, render, preamble=(), keepalive=KEEPALIVE_SECONDS, shared=None):
    """The bytes of an event stream. ``position`` is (generation, seq) from ``cursor``;
    ``render(kind, data)`` gives (event name, JSON data), or None to leave an entry out;
    ``preamble`` is events (name, data) sent first, without ids (a snapshot); ``shared``
    (SharedFrames) renders each entry once for every follower of the log."""
    generation, seq = position
    head = ["retry: %d\n\n" % RETRY_MS]
    if (generation is not None or seq) and not log.continues(generation, seq):
        # The follower's id is from a log that is gone (or trimmed past it): start over.
        head.append(frame(None, "reset", {"reason": "the events after that id are no longer kept; "
                                                    "this stream starts again from the beginning"}))
        seq = log.first_seq - 1
    head += [frame(None, kind, data) for kind, data in preamble]
    yield "".join(head).encode("utf-8")
    while True:
        entries = log.after(seq)
        if not entries:
            if log.closed:
                return
            log.wait(seq, keepalive)
            if not log.after(seq) and not log.closed:
                yield b": keepalive\n\n"
            continue
        parts, size = [], 0
        for entry_seq, kind, data in entries:
            text = (_entry_frame(log, render, entry_seq, kind, data) if shared is None
                    else shared.get(entry_seq, _entry_frame, log, render, entry_seq, kind, data))
            if text:
                parts.append(text)
                size += len(text)
            if size >= BATCH_BYTES:
                yield "".join(parts).encode("utf-8")
                parts, size = [], 0
            seq = entry_seq
        if parts:
            yield "".join(parts).encode("utf-8")
