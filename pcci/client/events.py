"""A pool's live output as whole lines per node, from ``GET /pool/ID/events``.

Lines are handed out whole, so lines of different nodes never interleave mid-line; a
job's last line without a newline comes when the job ends. A dropped stream is resumed
with Last-Event-ID; each stream's text offset (``output_text``) is tracked, so output
sent again (after a ``reset``) is never handed out twice.
"""

import json
import time
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple

from ..output_text import text_end
from .transport import PcciError
from .values import Line

# A stream that breaks is resumed this many times in a row at most.
RESUME_ATTEMPTS = 10
RESUME_PAUSE_SECONDS = 1.0


def parse_events(lines: Iterable[bytes]) -> Iterator[Tuple[Optional[str], str, str]]:
    """(id, event, data) for each event of a text/event-stream given as an iterable of
    lines (bytes); comments and the retry field are skipped (pure)."""
    event_id, kind, data = None, "message", []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield event_id, kind, "\n".join(data)
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)


class LineSplitter:
    """Output events in, whole lines out (pure): remembers each stream's unfinished line
    and how far it has handed out."""

    def __init__(self) -> None:
        self.partial: Dict[Tuple[str, str], str] = {}
        self.handed: Dict[Tuple[str, str], int] = {}    # text offset handed out so far

    def output(self, node: str, stream: str, offset: int, text: str) -> Iterator[Line]:
        key = (node, stream)
        done = self.handed.get(key, 0)
        end = text_end(offset, text)
        if end <= done:
            return                              # sent again after a reset: handed out already
        if offset < done:
            text = text[done - offset:]
        self.handed[key] = end
        lines = (self.partial.pop(key, "") + text).split("\n")
        if lines[-1]:
            self.partial[key] = lines[-1]
        for line in lines[:-1]:
            yield Line(node, stream, line)

    def job_ended(self, node: str) -> Iterator[Line]:
        for stream in ("stdout", "stderr"):
            rest = self.partial.pop((node, stream), None)
            if rest:
                yield Line(node, stream, rest)


def follow_lines(open_events: Callable[[Optional[str]], object], pool_id: str,
                 done: Optional[Callable[[dict], None]] = None) -> Iterator[Line]:
    """Every line of the pool's output until it is done. ``open_events(last_event_id)``
    opens the stream (the transport's ``events``); ``done`` gets the ``done`` event's data."""
    splitter = LineSplitter()
    last_id, failures = None, 0
    while True:
        try:
            with open_events(last_id) as response:
                for event_id, kind, data in parse_events(response):
                    failures = 0
                    last_id = event_id or last_id
                    event = json.loads(data)
                    if kind == "output":
                        yield from splitter.output(event["worker"], event["stream"], event["offset"], event["text"])
                    elif kind == "job" and event["state"] not in ("queued", "running"):
                        yield from splitter.job_ended(event["worker"])
                    elif kind == "done":
                        if done is not None:
                            done(event)
                        return
        except (OSError, ValueError, PcciError) as exc:
            if isinstance(exc, PcciError) and exc.status is not None:
                raise                           # the master refused: resuming will not help
            failures += 1
            if failures > RESUME_ATTEMPTS:
                raise PcciError("the event stream of pool %s keeps breaking: %s" % (pool_id, exc))
            time.sleep(RESUME_PAUSE_SECONDS)
            continue
        failures += 1                           # the stream ended without ``done``
        if failures > RESUME_ATTEMPTS:
            raise PcciError("the event stream of pool %s ended before the pool did" % pool_id)
        time.sleep(RESUME_PAUSE_SECONDS)
