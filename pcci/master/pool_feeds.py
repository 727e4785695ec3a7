"""Running jobs' output as it arrives, and each pool's event log (``event_log.EventLog``).

A pool gets a feed when its first piece of output arrives or its first follower comes.
A new feed starts with the pool's state then (every job's state, the output of jobs
already ended); from then on it records job state changes, pieces of output and, when
the pool has ended and that is saved, ``done``.

Output is held once: each stream's pieces are kept in a ``StreamText``, and the log's
output events point into it. When a job's result arrives (the source of truth), the
stream switches to the result's text; whatever the live pieces did not carry (lost
with a dropped link, skipped while the link was congested, or the last few
milliseconds) is added as one more output event, so a follower ends with exactly the
result's output, never a byte twice.

A piece is taken only if it starts where the stream's copy ends (the worker's byte
offset); one that does not (pieces were lost) is dropped, and after a reconnect the
master tells the worker where its copy ends (``output_from``) so the worker sends the
rest again. A follower's ``output`` event carries the text offset instead (characters,
``output_text``), which the master counts as it takes pieces.
"""

import bisect
import logging

from ..spilled_text import SpillWriter, text_size
from . import views
from .bounded_recent import BoundedRecent
from .event_log import EventLog
from .sse import SharedFrames

log = logging.getLogger(__name__)

# Ended pools whose logs stay, so a follower can resume one: bounded like the core's
# ``recent``, by count and by what they hold (their output and their events).
ENDED_FEEDS = 64
ENDED_BYTES = 64 * 1024 * 1024
# What an event costs besides its text: the tuple, its ids, the list slot.
EVENT_OVERHEAD_BYTES = 150
# What the result adds to a stream is cut into events of at most this many characters,
# so no event (and none of its copies on the way to a follower) is large.
EVENT_CHARS = 256 * 1024
# A pool's log takes no more output events than this (a job printing a byte every few
# milliseconds for days); past it the live view waits for the results.
MAX_OUTPUT_EVENTS = 200000
# A running job's stream holds this many characters in memory at most; past it its
# pieces go to a file that followers read from (a job printing hundreds of megabytes).
LIVE_KEEP_CHARS = 1024 * 1024


class StreamText:
    """One stream of one job: live pieces while it runs, the result's text once it ended.
    Past ``LIVE_KEEP_CHARS`` the pieces go to a file (``spill``), and only the last stays."""

    __slots__ = ("pieces", "starts", "chars", "byte_end", "final", "limit", "spill", "spill_dir")

    def __init__(self, limit, spill_dir=None):
        self.pieces = []        # str pieces as they came (the last one only, once spilled)
        self.starts = []        # character offset of each piece
        self.chars = 0
        self.byte_end = 0       # the worker's byte offset where the pieces end
        self.final = None
        self.limit = limit      # bytes kept at most (no worker may send more than a result holds)
        self.spill = None       # a SpillWriter holding all the pieces, past LIVE_KEEP_CHARS
        self.spill_dir = spill_dir

    def take(self, offset, length, text):
        """A piece from the worker: (char start, char end) if it continues the stream, else None."""
        if self.final is not None or offset != self.byte_end or self.byte_end + length > self.limit or not text:
            return None
        start = self.chars
        try:
            if self.spill is None and start + len(text) > LIVE_KEEP_CHARS:
                self.spill = self._spilled(self.pieces)
            if self.spill is not None:
                self.spill.write_text(text)
        except OSError as exc:
            # A full disk: the live view stops here; the result, when it comes, is the whole truth.
            log.warning("live output past %d characters not kept (%s); the job's result will show it all",
                        start, exc)
            self.limit = 0
            return None
        if self.spill is not None:
            self.pieces, self.starts = [text], [start]
        else:
            self.pieces.append(text)
            self.starts.append(start)
        self.chars += len(text)
        self.byte_end += length
        return start, self.chars

    def _spilled(self, pieces):
        spill = SpillWriter(self.spill_dir)
        try:
            for piece in pieces:
                spill.write_text(piece)
        except OSError:
            spill.discard()
            raise
        return spill

    def settle(self, final):
        """The job's result: (char start, char end) of what the pieces lacked,
        or None. When the pieces are not the start of the result (the worker cut an output
        too large for one frame), they stay as they were and only the result is shown."""
        if self.final is not None:
            return None
        if self.pieces and not (len(final) >= self.chars and final[self.starts[-1]:self.chars] == self.pieces[-1]):
            return None
        start = self.chars
        self.final = final
        self.pieces, self.starts = [], []
        if self.spill is not None:
            self.spill.discard()
            self.spill = None
        self.chars = len(final)
        return (start, self.chars) if self.chars > start else None

    def slice(self, start, end):
        if self.final is not None:
            return self.final[start:end]
        if self.spill is not None:
            return self.spill.text[start:end]
        first = bisect.bisect_right(self.starts, start) - 1
        parts = []
        for index in range(max(first, 0), len(self.pieces)):
            piece_start = self.starts[index]
            if piece_start >= end:
                break
            piece = self.pieces[index]
            parts.append(piece[max(0, start - piece_start):end - piece_start])
        return "".join(parts)

    def text(self):
        if self.final is not None:
            return self.final
        return self.spill.text if self.spill is not None else "".join(self.pieces)

    def memory_bytes(self):
        """What it holds in memory or in its file (``text_size``)."""
        if self.final is not None:
            return text_size(self.final)
        return text_size(self.spill.text) + len(self.pieces[-1]) if self.spill is not None else self.chars


class PoolFeed:
    """One pool's live output and its event log."""

    def __init__(self, pool, limit, generation=None, spill_dir=None):
        self.pool_id = pool.pool_id
        self.spill_dir = spill_dir
        self.log = EventLog(generation)
        self.frames = SharedFrames()    # its events' bytes, made once for all its followers
        self.limit = limit
        self.streams = {}               # (worker, stream) -> StreamText
        self.output_events = 0
        for job in pool.jobs.values():
            if job.ended:
                self._settle(job)
            self.log.append("job", views.job_state_json(job))

    def stream(self, worker, name):
        key = (worker, name)
        text = self.streams.get(key)
        if text is None:
            text = self.streams[key] = StreamText(self.limit, self.spill_dir)
        return text

    def output(self, worker, name, offset, length, text):
        if self.output_events >= MAX_OUTPUT_EVENTS:
            return
        stream = self.stream(worker, name)
        taken = stream.take(offset, length, text)
        if taken is not None:
            self.output_events += 1
            self.log.append("output", (worker, name, taken[0], taken[1], stream))

    def job_changed(self, job):
        if job.ended:
            self._settle(job)
        self.log.append("job", views.job_state_json(job))

    def _settle(self, job):
        for name, final in (("stdout", job.stdout), ("stderr", job.stderr)):
            stream = self.stream(job.worker, name)
            rest = stream.settle(final)
            if rest is not None:
                start, end = rest
                for piece_start in range(start, end, EVENT_CHARS):
                    self.log.append("output", (job.worker, name, piece_start, min(end, piece_start + EVENT_CHARS),
                                               stream))

    def end(self, pool):
        self.log.append("done", views.pool_json(pool, with_output=False))
        self.log.close()

    def approximate_bytes(self):
        return (sum(stream.memory_bytes() for stream in self.streams.values())
                + EVENT_OVERHEAD_BYTES * len(self.log.entries))

    def offsets(self, worker):
        """Where this feed's copy of a worker's streams ends, in the worker's bytes."""
        return {name: self.streams[(worker, name)].byte_end if (worker, name) in self.streams else 0
                for name in ("stdout", "stderr")}

    def spilled_bytes(self):
        """The bytes of its running jobs' output held in files (StreamText.spill)."""
        return sum(stream.spill.text.size for stream in self.streams.values()
                   if stream.final is None and stream.spill is not None)

    def live_output(self, worker):
        """(stdout, stderr) received so far from a running job."""
        return tuple(self.streams[(worker, name)].text() if (worker, name) in self.streams else ""
                     for name in ("stdout", "stderr"))


class PoolFeeds:
    """The feeds of running pools, and of the last ended ones (so a follower may resume)."""

    def __init__(self, output_limit, spill_dir=None):
        self.output_limit = output_limit
        self.spill_dir = spill_dir      # where long live output is held (StreamText)
        self.running = {}
        # The feed that ended last is kept whatever its size: its followers may be about to resume.
        self.ended = BoundedRecent(ENDED_FEEDS, ENDED_BYTES, PoolFeed.approximate_bytes, min_kept=1)

    def existing(self, pool_id):
        return self.running.get(pool_id) or self.ended.get(pool_id)

    def follow(self, pool):
        """The feed of a pool: kept, or made now from its state (an ended pool whose feed is
        gone gets one named after the pool, so the same ids are given out every time)."""
        feed = self.existing(pool.pool_id)
        if feed is not None:
            return feed
        if pool.done:
            feed = PoolFeed(pool, self.output_limit, generation="end")
            feed.end(pool)
            self._keep_ended(feed)
            return feed
        feed = self.running[pool.pool_id] = PoolFeed(pool, self.output_limit, spill_dir=self.spill_dir)
        return feed

    def output(self, pool, worker, message):
        """A piece of the output of ``worker``'s job of ``pool``, which is running (``PoolCore.output_for``)."""
        feed = self.running.get(pool.pool_id) or self.follow(pool)
        feed.output(worker, message["stream"], message["offset"], message["length"], message["data"])

    def jobs_changed(self, pool, jobs):
        feed = self.running.get(pool.pool_id)
        if feed is not None:
            for job in jobs:
                feed.job_changed(job)

    def pool_ended(self, pool):
        feed = self.running.pop(pool.pool_id, None)
        if feed is not None:
            feed.end(pool)
            self._keep_ended(feed)

    def dropped(self, pool_id):
        feed = self.running.pop(pool_id, None)
        if feed is not None:
            feed.log.close()

    def _keep_ended(self, feed):
        self.ended.add(feed.pool_id, feed)

    def offsets(self, pool_id, worker):
        feed = self.running.get(pool_id)
        return feed.offsets(worker) if feed is not None else {"stdout": 0, "stderr": 0}

    def version(self, pool_id):
        """(generation, last event) of a running pool's feed: it moves with every piece of
        output and every job change; None without a feed."""
        feed = self.running.get(pool_id)
        return None if feed is None else (feed.log.generation, feed.log.last_seq)

    def spilled_bytes(self, pool_id):
        feed = self.running.get(pool_id)
        return 0 if feed is None else feed.spilled_bytes()

    def live_output(self, pool_id):
        """worker -> (stdout, stderr) so far, for a running pool's jobs that are running."""
        feed = self.running.get(pool_id)
        return {} if feed is None else {worker: feed.live_output(worker) for worker, _ in feed.streams}


def render_event(kind, data):
    """(event name, JSON data) of a pool log's entry, for ``sse.stream``."""
    if kind == "output":
        worker, name, start, end, stream = data
        # The event's offset is a text offset (output_text): characters, as the CLI counts.
        return "output", {"worker": worker, "stream": name, "offset": start, "text": stream.slice(start, end)}
    return kind, data
