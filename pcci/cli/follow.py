"""`pcci run --stream` and `pcci pool ID --follow`: a pool's output as it is produced,
each line prefixed with its node, stdout to stdout and stderr to stderr, as pdsh does.

Lines are printed whole, so lines of different nodes never interleave mid-line; a
job's last line without a newline is printed when the job ends. A dropped stream is
resumed with Last-Event-ID; each stream's text offset (``output_text``) is tracked here too, so output
sent again (after a ``reset``) is never printed twice.
"""

import json
import time

from ..client.transport import PcciError
from ..output_text import text_end

# A stream that breaks is resumed this many times in a row at most.
RESUME_ATTEMPTS = 10
RESUME_PAUSE_SECONDS = 1.0


def parse_events(lines):
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


class LinePrinter:
    """Prints output events as whole lines prefixed with the node."""

    def __init__(self, out, err):
        self.files = {"stdout": out, "stderr": err}
        self.partial = {}       # (worker, stream) -> text of an unfinished line
        self.printed = {}       # (worker, stream) -> text offset handled so far (output_text)

    def output(self, worker, stream, offset, text):
        key = (worker, stream)
        done = self.printed.get(key, 0)
        end = text_end(offset, text)
        if end <= done:
            return                              # sent again after a reset: printed already
        if offset < done:
            text = text[done - offset:]
        self.printed[key] = end
        lines = (self.partial.pop(key, "") + text).split("\n")
        if lines[-1]:
            self.partial[key] = lines[-1]
        handle = self.files[stream]
        if len(lines) > 1:
            handle.write("".join("%s: %s\n" % (worker, line) for line in lines[:-1]))
            handle.flush()

    def job_ended(self, worker):
        for stream, handle in self.files.items():
            rest = self.partial.pop((worker, stream), None)
            if rest:
                handle.write("%s: %s\n" % (worker, rest))
                handle.flush()


def follow(client, pool_id, out, err):
    """Print the pool's output until it is done; returns the ``done`` event's data."""
    printer = LinePrinter(out, err)
    last_id, failures = None, 0
    while True:
        try:
            with client.events(pool_id, last_id) as response:
                for event_id, kind, data in parse_events(response):
                    failures = 0
                    last_id = event_id or last_id
                    event = json.loads(data)
                    if kind == "output":
                        printer.output(event["worker"], event["stream"], event["offset"], event["text"])
                    elif kind == "job" and event["state"] not in ("queued", "running"):
                        printer.job_ended(event["worker"])
                    elif kind == "done":
                        return event
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
