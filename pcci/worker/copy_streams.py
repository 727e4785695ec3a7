"""The worker's streamed copies (protocol ``file_stream``): files of any size, in chunks.

The master opens a copy with ``copy_begin``; the worker answers ``copy_from`` with how
many bytes its partial file already holds (0, or more after a reconnect, a master
restart), and the master sends ``copy_chunk`` frames from there. Each chunk written is
acknowledged (``copy_ack``); the master keeps at most a couple unacknowledged, so
neither side holds more than that in memory whatever the file's size. After the last
chunk the file is checked and renamed into place off the event loop
(``partial_file``), and the copy ends with a result like any job's.

After a reconnect the worker names its copies in the sync (as running jobs) and sends a
``copy_from`` for each: the master goes on from there.
"""

import logging

import gevent

from .. import protocol
from ..clock import wall_ms
from ..states import KillOutcome
from .file_copy import CopyRefused
from .partial_file import PartialFile, Unpacked
from .results import copied, copy_failed, copy_killed, copy_refused, unpacked

log = logging.getLogger(__name__)


def _outcome(function, *args):
    """(value, None) or (None, the exception), for a call in a thread."""
    try:
        return function(*args), None
    except Exception as exc:
        return None, exc


class CopyStreams:
    def __init__(self, on_done, open_file=PartialFile):
        self.on_done = on_done          # a result -> the outbox
        self.open_file = open_file      # (job, dest, size, sha256, mode, owner) -> a PartialFile
        self.streams = {}               # job id -> its PartialFile, receiving chunks
        self.started = {}               # job id -> wall ms at its copy_begin
        self.busy = set()               # job ids being opened or finished (in a thread)

    def job_ids(self):
        """The copies not finished: what the worker names as running."""
        return list(self.streams) + [job for job in self.busy if job not in self.streams]

    def begin(self, link, message):
        job = message["job"]
        if job in self.streams:             # the master asks again (it restarted): say where we are
            link.send({"type": protocol.COPY_FROM, "job": job, "offset": self.streams[job].offset})
            return
        if job in self.busy:
            return
        self.busy.add(job)
        self.started.setdefault(job, wall_ms())
        try:
            stream = self.open_file(job, message["dest"], message["bytes"], message["sha256"], message.get("mode"),
                                    message.get("owner"), unpack=message.get("unpack"))
            _, exc = gevent.get_hub().threadpool.apply(_outcome, (stream.open,))   # a resume reads it back
        except CopyRefused as exc_now:
            stream, exc = None, exc_now
        finally:
            self.busy.discard(job)
        if exc is not None:
            self._ended(job, exc, message["dest"])
            return
        self.streams[job] = stream
        link.send({"type": protocol.COPY_FROM, "job": job, "offset": stream.offset})
        if stream.complete:
            self._finish(job)

    def chunk(self, link, message):
        job = message["job"]
        stream = self.streams.get(job)
        if stream is None:
            return          # killed meanwhile, or a chunk sent again after it ended
        data = protocol.chunk_data(message)
        try:
            if not stream.append(message["offset"], data):
                return      # not where the file ends: a chunk sent before a copy_from we answered
        except OSError as exc:
            del self.streams[job]
            stream.discard()
            self._ended(job, CopyRefused("writing %s failed: %s" % (stream.dest, exc.strerror or exc)), stream.dest)
            return
        link.send({"type": protocol.COPY_ACK, "job": job, "offset": stream.offset})
        if stream.complete:
            self._finish(job)

    def resume(self, link):
        """After a reconnect: tell the master where each copy's file ends."""
        for job, stream in self.streams.items():
            link.send({"type": protocol.COPY_FROM, "job": job, "offset": stream.offset})

    def kill(self, job):
        """Stop a copy and remove its partial file; None if the job is not a copy here."""
        stream = self.streams.pop(job, None)
        if stream is None:
            return None if job not in self.busy else KillOutcome.NOT_RUNNING
        stream.discard()
        self.on_done(copy_killed(job, stream.offset, stream.size, self.started.pop(job, None), wall_ms()))
        return KillOutcome.SIGNALLED

    def _finish(self, job):
        stream = self.streams.pop(job)
        self.busy.add(job)
        gevent.spawn(self._finish_in_thread, job, stream)

    def _finish_in_thread(self, job, stream):
        try:
            written, exc = gevent.get_hub().threadpool.apply(_outcome, (stream.finish,))
        except Exception as exc_now:        # the thread pool itself (a bug): the copy still ends
            written, exc = None, exc_now
        finally:
            self.busy.discard(job)
        if exc is None and isinstance(written, Unpacked):
            self.on_done(unpacked(job, stream.dest, written, self.started.pop(job, None), wall_ms()))
        elif exc is None:
            self.on_done(copied(job, stream.dest, written.size, written.sha256, self.started.pop(job, None),
                                wall_ms()))
        else:
            self._ended(job, exc, stream.dest)

    def _ended(self, job, exc, dest):
        start = self.started.pop(job, None)
        if isinstance(exc, CopyRefused):
            log.warning("copy %s to %s refused: %s", job, dest, exc)
            self.on_done(copy_refused(job, str(exc), start, wall_ms()))
        else:
            log.error("copy %s to %s failed (a bug)", job, dest, exc_info=exc)
            self.on_done(copy_failed(job, exc, start, wall_ms()))
