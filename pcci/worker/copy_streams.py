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

A relayed copy (pcci.master.relay_plan): a ``copy_begin`` with ``relayFrom`` is not
answered with ``copy_from``; the worker pulls the bytes from that parent worker instead
(``relay_pull``), into the same partial file. When the pull stops early (the parent
failed, stalled, refused, was killed), or the master asks again, or the link comes back,
the worker sends ``copy_from`` from where its own file ends and the rest comes direct, as
for any copy. The whole file's sha256 is checked here either way; a file that holds any
bytes pulled from a relay and does not match is taken again from the master, from byte 0. A ``copy_begin`` with
``relayKey`` offers the file to this worker's relay listener (``relay_sources``) as it
is written.
"""

import logging

import gevent

from .. import protocol
from ..clock import wall_ms
from ..framing import FrameError
from . import relay_pull
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
    def __init__(self, on_done, open_file=PartialFile, node=None, relays=None, stall_seconds=relay_pull.STALL_SECONDS):
        self.on_done = on_done          # a result -> the outbox
        self.open_file = open_file      # (job, dest, size, sha256, mode, owner) -> a PartialFile
        self.node = node                # this worker's name: a relay ticket is made out to it
        self.relays = relays            # relay_sources.RelaySources, if this worker serves relays
        self.stall_seconds = stall_seconds
        self.streams = {}               # job id -> its PartialFile, receiving chunks
        self.started = {}               # job id -> wall ms at its copy_begin
        self.busy = set()               # job ids being opened or finished (in a thread)
        self.pulls = {}                 # job id -> the greenlet pulling it from a relay
        self.relayed = set()            # job ids whose files hold bytes pulled from a relay
        self.link = None                # the master's link of the last message about copies
        self._context = None

    def job_ids(self):
        """The copies not finished: what the worker names as running."""
        return list(self.streams) + [job for job in self.busy if job not in self.streams]

    def begin(self, link, message):
        job = message["job"]
        self.link = link
        relay = protocol.relay_from(message) if self.node is not None else None
        if job in self.streams:             # the master asks again (it restarted): say where we are
            self._direct(job)
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
        if message.get("relayKey") and self.relays is not None:
            self.relays.offer(job, stream, message["relayKey"], message.get("relayChildren") or ())
        if stream.complete:
            link.send({"type": protocol.COPY_FROM, "job": job, "offset": stream.offset})
            self._finish(job)
        elif relay is not None:
            log.info("copy %s: pulling it from %s (%s:%d)", job, relay["parent"], relay["host"], relay["port"])
            self.pulls[job] = gevent.spawn(self._pull, job, stream, relay)
        else:
            link.send({"type": protocol.COPY_FROM, "job": job, "offset": stream.offset})

    def chunk(self, link, message):
        job = message["job"]
        stream = self.streams.get(job)
        if stream is None or job in self.pulls:
            return          # killed meanwhile, a chunk sent again after it ended, or being pulled
        data = protocol.chunk_data(message)
        if not self._append(job, stream, message["offset"], data):
            return          # not where the file ends (a chunk sent before a copy_from we answered), or failed
        link.send({"type": protocol.COPY_ACK, "job": job, "offset": stream.offset})
        if stream.complete:
            self._finish(job)

    def _append(self, job, stream, offset, data):
        """Write a piece; True if written. A failed write refuses the copy."""
        try:
            if not stream.append(offset, data):
                return False
        except OSError as exc:
            del self.streams[job]
            self.relayed.discard(job)
            self._withdraw(job)
            stream.discard()
            self._ended(job, CopyRefused("writing %s failed: %s" % (stream.dest, exc.strerror or exc)), stream.dest)
            return False
        if self.relays is not None:
            self.relays.grew(job)
        return True

    def resume(self, link):
        """After a reconnect: tell the master where each copy's file ends (a pull stops: the
        rest comes direct)."""
        self.link = link
        for job in list(self.streams):
            self._direct(job)

    # -- relayed copies ------------------------------------------------------------------
    def _direct(self, job):
        """The rest of this copy from the master: stop pulling it, say where its file ends."""
        pull = self.pulls.pop(job, None)
        if pull is not None and pull is not gevent.getcurrent():
            pull.kill(block=False)
        stream = self.streams.get(job)
        if stream is not None and self.link is not None and not self.link.closed:
            self.link.send({"type": protocol.COPY_FROM, "job": job, "offset": stream.offset})

    def _pull(self, job, stream, relay):
        if self._context is None:
            self._context = relay_pull.client_context()

        def write(offset, data):
            if self.streams.get(job) is not stream:
                return False        # killed or refused meanwhile
            if offset + len(data) > stream.size:
                raise FrameError("the relay sent more bytes than the file has")
            self.relayed.add(job)
            return self._append(job, stream, offset, data)

        why = relay_pull.pull(relay, self.node, stream, write, self._context, self.stall_seconds)
        if self.pulls.get(job) is not gevent.getcurrent() or self.streams.get(job) is not stream:
            return          # told to go direct meanwhile, or killed
        if why is not None:
            log.warning("copy %s: pulling from %s stopped at byte %d of %d (%s); the rest comes from the master",
                        job, relay["parent"], stream.offset, stream.size, why)
            self._direct(job)
            return
        del self.pulls[job]
        self._finish(job)

    def _withdraw(self, job):
        if self.relays is not None:
            self.relays.withdraw(job)

    def kill(self, job):
        """Stop a copy and remove its partial file; None if the job is not a copy here."""
        stream = self.streams.pop(job, None)
        if stream is None:
            return None if job not in self.busy else KillOutcome.NOT_RUNNING
        pull = self.pulls.pop(job, None)
        if pull is not None:
            pull.kill(block=False)
        self.relayed.discard(job)
        self._withdraw(job)
        stream.discard()
        self.on_done(copy_killed(job, stream.offset, stream.size, self.started.pop(job, None), wall_ms()))
        return KillOutcome.SIGNALLED

    def _finish(self, job):
        stream = self.streams[job]
        if job in self.relayed:
            self.relayed.discard(job)
            if stream.hash.hexdigest() != stream.sha256:
                # Some bytes came from a relay (the rest perhaps from the master): trust none.
                log.warning("copy %s: the file, partly pulled from a relay, does not have sha256 %s; taking it "
                            "again from the master", job, stream.sha256)
                self._withdraw(job)
                stream.restart()
                self._direct(job)
                return
        del self.streams[job]
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
            self._withdraw(job)
            self._ended(job, exc, stream.dest)

    def _ended(self, job, exc, dest):
        start = self.started.pop(job, None)
        if isinstance(exc, CopyRefused):
            log.warning("copy %s to %s refused: %s", job, dest, exc)
            self.on_done(copy_refused(job, str(exc), start, wall_ms()))
        else:
            log.error("copy %s to %s failed (a bug)", job, dest, exc_info=exc)
            self.on_done(copy_failed(job, exc, start, wall_ms()))
