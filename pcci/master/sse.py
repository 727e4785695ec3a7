"""Server-Sent Events: an event log written to one follower as ``text/event-stream``.

Each follower is one greenlet writing from the shared log (``event_log.EventLog``) at
its own pace. What a follower costs the master is bounded in bytes:

- **One rendering for all.** Each event's bytes are made once (``SharedFrames``, one per
  log) and every follower writes those same bytes; nothing is rendered, joined or
  encoded per follower beyond one write.
- **A send budget.** A follower is handed at most ``SEND_BYTES`` at a time (small events
  joined up to it, a large one cut into slices of it), so what the master holds for a
  follower that stops reading is one such write. The API socket's timeout bounds each
  write: one that the peer does not take within ``api_idle_timeout`` cuts the follower.
  It resumes with the id of the last whole event it got (``Last-Event-ID``, as
  ``EventSource`` does by itself): it gets what it missed, or a ``reset``.
- **Memory goes back.** After many followers leave, the heap is trimmed
  (``memory_release``).
- **Gaps are announced.** A follower that fell behind a ring log's oldest event (the
  cluster's ``/events``) gets a ``reset`` (and the snapshot again) before the events it
  can still have; it is never silently moved forward.

A comment line goes out after ``KEEPALIVE_SECONDS`` without events, so proxies do not
close a quiet stream. The stream ends after the log is closed (a pool's ``done``).
"""

import itertools
import json
from collections.abc import Callable, Iterable, Iterator

from .event_log import EventLog, parse_cursor
from .memory_release import RELEASER

KEEPALIVE_SECONDS = 15.0
# A follower's send budget: the most bytes handed to one write (see the docstring).
SEND_BYTES = 8 * 1024
# Log entries a follower takes at a time (it holds their references while writing them).
ENTRIES_AT_ONCE = 256
# The client's reconnection delay, sent once (SSE's retry field).
RETRY_MS = 2000
KEEPALIVE = b": keepalive\n\n"


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
    """Each entry's frame (bytes), made once for all the followers of a log: the cluster's
    events go to every open dashboard (rendering a worker for each of them cost the master
    a third more CPU with ten dashboards open, bench/dashboard.py), and a pool's output to
    every follower of the pool (one rendering each made 640 idle followers cost 800 MB,
    bench/idle_followers.py). Holds the latest ``limit`` frames and ``byte_limit`` bytes;
    emptied when the log's last follower leaves."""

    def __init__(self, limit: int = 4096, byte_limit: int = 1024 * 1024):
        self.frames = {}
        self.limit = limit
        self.byte_limit = byte_limit
        self.size = 0
        self.followers = 0

    def get(self, seq, make, *args):
        """The entry's frame: kept, or ``make(*args)`` (bytes) now and kept."""
        data = self.frames.get(seq)
        if data is None:
            data = self.frames[seq] = make(*args)
            self.size += len(data)
            if len(self.frames) > self.limit or self.size > self.byte_limit:
                self._drop_oldest_half()
        return data

    def _drop_oldest_half(self):
        for old in list(self.frames)[:max(1, len(self.frames) // 2)]:
            self.size -= len(self.frames.pop(old))

    def joined(self):
        self.followers += 1

    def left(self):
        self.followers -= 1
        if self.followers <= 0:
            self.followers = 0
            self.frames, self.size = {}, 0


def _entry_frame(log, render, seq, kind, data):
    """One log entry as its event's frame (bytes); b"" for an entry ``render`` leaves out."""
    rendered = render(kind, data)
    return b"" if rendered is None else frame(log.event_id(seq), *rendered).encode("utf-8")


def _reset_frame(text):
    return frame(None, "reset", {"reason": text}).encode("utf-8")


def slices(data: bytes, size: int = SEND_BYTES) -> Iterator[bytes]:
    """``data`` in writes of at most ``size`` bytes."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def packed(frames: Iterable[bytes]) -> Iterator[bytes]:
    """Frames as writes of at most ``SEND_BYTES``: small ones joined, a large one sliced.
    Frames are taken as they are written, so a long run of them is never held at once."""
    parts, size = [], 0
    for data in frames:
        if parts and size + len(data) > SEND_BYTES:
            yield b"".join(parts)
            parts, size = [], 0
        if len(data) > SEND_BYTES:
            yield from slices(data)
        elif data:
            parts.append(data)
            size += len(data)
    if parts:
        yield b"".join(parts)


def _snapshot_frames(snapshot):
    """The snapshot's events (without ids), made one at a time as they are written."""
    return (frame(None, kind, data).encode("utf-8") for kind, data in (snapshot() if snapshot is not None else ()))


def stream(log: EventLog, position, render: Callable, snapshot: Callable[[], Iterable] = None,
           keepalive: float = KEEPALIVE_SECONDS, shared: SharedFrames = None) -> Iterator[bytes]:
    """The bytes of an event stream, in writes of at most ``SEND_BYTES``. ``position`` is
    (generation, seq) from ``cursor``; ``render(kind, data)`` gives (event name, JSON data),
    or None to leave an entry out; ``snapshot()`` gives events (name, data) sent without
    ids before the log's events whenever the stream starts from the beginning (a fresh
    follower, or after a ``reset``); ``shared`` (SharedFrames) renders each entry once for
    every follower of the log."""
    if shared is not None:
        shared.joined()
    try:
        yield from _start(log, position, render, snapshot, keepalive, shared)
    finally:
        if shared is not None:
            shared.left()
        RELEASER.reader_left()


def _start(log, position, render, snapshot, keepalive, shared):
    generation, seq = position
    head = [b"retry: %d\n\n" % RETRY_MS]
    fresh = generation is None and not seq
    if not fresh and not log.continues(generation, seq):
        # The follower's id is from a log that is gone (or trimmed past it): start over.
        head.append(_reset_frame("the events after that id are no longer kept; "
                                 "this stream starts again from the beginning"))
        fresh = True
    if fresh:
        seq = log.first_seq - 1
    yield from packed(itertools.chain(head, _snapshot_frames(snapshot) if fresh else ()))
    yield from _follow(log, seq, render, snapshot, keepalive, shared)


def _follow(log, seq, render, snapshot, keepalive, shared):
    while True:
        if seq < log.first_seq - 1:
            # A ring log dropped events this follower had yet to get: say so, never skip.
            missed = "events %d to %d were dropped before this follower read them; " \
                     "what follows starts from the oldest event kept" % (seq + 1, log.first_seq - 1)
            yield from packed(itertools.chain([_reset_frame(missed)], _snapshot_frames(snapshot)))
            seq = log.first_seq - 1
            continue
        entries = log.after(seq, ENTRIES_AT_ONCE)
        if not entries:
            if log.closed:
                return
            log.wait(seq, keepalive)
            if not log.after(seq, 1) and not log.closed:
                yield KEEPALIVE
            continue
        seq = entries[-1][0]
        yield from packed(_entry_frame(log, render, entry_seq, kind, data) if shared is None
                          else shared.get(entry_seq, _entry_frame, log, render, entry_seq, kind, data)
                          for entry_seq, kind, data in entries)
