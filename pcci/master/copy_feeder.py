"""The master's side of streamed copies (protocol ``file_stream``): chunks of an uploaded
file (``blob_store``) to each worker, with back-pressure.

A worker answers ``copy_begin`` with ``copy_from`` (where its partial file ends: 0, or
more after a dropped link or a master restart); from there the feeder sends the file and
keeps at most ``IN_FLIGHT`` chunks of ``CHUNK_BYTES`` unacknowledged per copy, going on
as ``copy_ack`` frames come. A chunk travels as ``copy_chunk`` frames of ``FRAME_BYTES``,
each acknowledged when written, and a frame is queued only when the link has written out
the one before into the kernel: so the master holds about one frame per worker in its
memory whatever the file's size and however slow the worker, while the window stays wide
enough for a link whose round trip (or the master's turn on a busy CPU) takes a while.
A frame is read from disk when it is sent, and workers at the same offset share its
bytes (``FrameCache``). To a worker that named ``raw_chunks`` the bytes travel as they
are, a blob beside a small JSON head (framing's blob payload); to an older one, as base64
in JSON.
"""

import base64
import collections
import json
import logging
import os

import gevent

from .. import protocol
from ..clock import monotonic
from ..framing import HEADER, blob_payload_head
from ..states import JobState
from .answer_once import AnswerOnce

log = logging.getLogger(__name__)

FRAME_BYTES = 512 * 1024
CHUNK_BYTES = 4 * 1024 * 1024
IN_FLIGHT = 2
# A copy with room in its window but a busy link looks again after this long.
RETRY_SECONDS = 0.05
# Encoded chunks kept for workers that follow: a few per file at a time.
CACHED_FRAMES = 8


def running_copy(core, worker, job_id):
    """The CopySpec of a streamed copy running on ``worker`` as ``job_id``, else None."""
    pool = core.find(job_id.partition("/")[0])
    if pool is None or pool.copy is None or pool.copy.blob is None:
        return None
    job = pool.jobs.get(worker)
    if job is None or job.job_id != job_id or job.state is not JobState.RUNNING:
        return None
    return pool.copy


class Stream:
    __slots__ = ("spec", "sent", "acked")

    def __init__(self, spec, offset):
        self.spec = spec
        self.sent = self.acked = offset


class FrameCache:
    """The tail of a chunk's frame by (file, offset, raw): its bytes (a raw blob), or its
    data as base64 and the closing brace (JSON)."""

    def __init__(self, path_of, size=CACHED_FRAMES):
        self.path_of = path_of
        self.size = size
        self.tails = collections.OrderedDict()

    def tail(self, sha256, offset, length, raw=False):
        key = (sha256, offset, raw)
        tail = self.tails.get(key)
        if tail is not None:
            self.tails.move_to_end(key)
            return tail
        fd = os.open(self.path_of(sha256), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise OSError("the uploaded file %s is shorter than its copy says" % sha256)
        tail = data if raw else b',"data":"' + base64.b64encode(data) + b'"}'
        self.tails[key] = tail
        if len(self.tails) > self.size:
            self.tails.popitem(last=False)
        return tail


def chunk_frame_head(job_id, offset, tail_length, raw=False):
    """A chunk frame's header and first fields; its tail (``FrameCache``) follows it."""
    if raw:
        head = blob_payload_head({"type": protocol.COPY_CHUNK, "job": job_id, "offset": offset},
                                 [("data", tail_length)], raw=True)
    else:
        head = b'{"type":"%s","offset":%d,"job":%s' % (protocol.COPY_CHUNK.encode(), offset,
                                                       json.dumps(job_id).encode())
    return HEADER.pack(len(head) + tail_length) + head


class CopyFeeder:
    def __init__(self, find_copy, path_of, frame_bytes=FRAME_BYTES, window_bytes=IN_FLIGHT * CHUNK_BYTES):
        self.find_copy = find_copy      # (worker, job id) -> its CopySpec while it runs, else None
        self.stale = AnswerOnce()       # copy_from of copies not running: one kill each job
        self.frames = FrameCache(path_of)
        self.frame_bytes = frame_bytes
        self.window_bytes = window_bytes
        self.streams = {}               # (session, job id) -> Stream

    def copy_from(self, session, message):
        """The worker's partial file ends at ``offset``: send from there."""
        protocol.checked(message, protocol.COPY_FROM)
        job, offset = message["job"], message["offset"]
        spec = self.find_copy(session.name, job)
        if spec is None:
            # Not a copy running there (it ended, was killed, was given up on): stop it.
            if self.stale.due(session, job, monotonic()):
                log.info("worker %s resumes copy %s, which is not running; telling it to stop", session.name,
                         job[:100])
                session.send({"type": protocol.KILL, "job": job})
            return
        if not 0 <= offset <= spec.size:
            raise protocol.ProtocolError("copy_from %s at %d, outside its %d bytes" % (job[:100], offset, spec.size))
        if offset:
            log.info("copy %s to %s goes on from byte %d of %d", job, session.name, offset, spec.size)
        stream = self.streams[(session, job)] = Stream(spec, offset)
        self._fill(session, job, stream)

    def copy_ack(self, session, message):
        protocol.checked(message, protocol.COPY_ACK)
        key = (session, message["job"])
        stream = self.streams.get(key)
        if stream is None:
            return
        if not stream.acked < message["offset"] <= stream.sent:
            return      # for a chunk sent before the worker's last copy_from: that one counts
        stream.acked = message["offset"]
        if stream.acked == stream.spec.size:
            del self.streams[key]
            return
        self._fill(session, message["job"], stream)

    def drained(self, session):
        """The session's link has written out its queue (Link.on_drained): its copies go on."""
        for (holder, job), stream in list(self.streams.items()):
            if holder is session:
                self._fill(session, job, stream)

    def _refill(self, session, job):
        stream = self.streams.get((session, job))
        if stream is not None:
            self._fill(session, job, stream)

    def ended(self, session, job_id):
        """The job's result came: nothing more to send."""
        self.streams.pop((session, job_id), None)

    def forget(self, session):
        """The worker's link closed: its copies go on when it says where (``copy_from``)."""
        self.stale.forget(session)
        for key in [key for key in self.streams if key[0] is session]:
            del self.streams[key]

    def _fill(self, session, job, stream):
        size = stream.spec.size
        raw = protocol.RAW_CHUNKS in session.features
        while stream.sent < size and stream.sent - stream.acked < self.window_bytes:
            if session.link.queued_bytes():
                if stream.sent == stream.acked:     # no ack will come to go on: look again soon
                    gevent.spawn_later(RETRY_SECONDS, self._refill, session, job)
                return
            length = min(self.frame_bytes, size - stream.sent)
            try:
                tail = self.frames.tail(stream.spec.blob, stream.sent, length, raw)
            except OSError as exc:
                log.error("copy %s: cannot read the uploaded file: %s; stopping it", job, exc)
                self.streams.pop((session, job), None)
                session.send({"type": protocol.KILL, "job": job})
                return
            session.send(chunk_frame_head(job, stream.sent, len(tail), raw))
            session.send(tail)
            stream.sent += length
