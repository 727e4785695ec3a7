"""The worker's side of reverse copies (protocol ``file_fetch``, `pcci fetch`): a file read
here and sent to the master in chunks, as rpdcp and clush --rcopy do.

The master asks with ``fetch_begin`` (a path, and the offset its copy of the file already
ends at: 0, or more after a dropped link or a restart). The file is opened without
following a link anywhere on its path (``no_follow``) and must be a regular file; its
bytes go out as ``fetch_chunk`` frames, at most ``IN_FLIGHT`` unacknowledged (the master
acknowledges each once stored), the last one carrying the sha256 of the whole file. The
job then ends with a result saying the size and the sha256, which the client checks
against what it downloads.
"""

import base64
import errno
import hashlib
import logging
import os
import stat

import gevent
from gevent.event import Event

from .. import protocol
from ..framing import encode_blob_payload
from ..clock import wall_ms
from ..states import JobState, KillOutcome
from .file_copy import CopyRefused, check_destination, open_parent
from .results import copy_failed, result_message

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
IN_FLIGHT = 2
# No acknowledgement for this long (a master away, that has not asked again): the fetch fails.
STALL_SECONDS = 3600.0


def open_regular(path, use_openat2=True):
    """A read-only descriptor of the regular file at ``path``, reached without following a
    link; CopyRefused with the reason."""
    directory, name = check_destination(path)
    dir_fd = open_parent(directory, use_openat2)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise CopyRefused("cannot read %s: %s" % (path, "it is a symbolic link" if exc.errno == errno.ELOOP else
                                                   exc.strerror or exc))
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CopyRefused("%s is not a regular file" % path)
    return fd


class Sending:
    __slots__ = ("path", "acked", "moved", "greenlet", "started", "raw")

    def __init__(self, path, offset, started, raw):
        self.path, self.acked, self.started = path, offset, started
        self.raw = raw      # the master named raw_chunks: the bytes go as a blob, not base64
        self.moved = Event()
        self.greenlet = None


class FetchStreams:
    def __init__(self, on_done, chunk_bytes=CHUNK_BYTES, in_flight=IN_FLIGHT):
        self.on_done = on_done
        self.chunk_bytes = chunk_bytes
        self.in_flight = in_flight
        self.sending = {}           # job id -> Sending

    def job_ids(self):
        return list(self.sending)

    def begin(self, link, message, raw=False):
        job, offset = message["job"], message["offset"]
        old = self.sending.pop(job, None)
        if old is not None:
            old.greenlet.kill(block=False)      # the master asks again (a new link): from its offset
        sending = self.sending[job] = Sending(message["path"], offset, old.started if old else wall_ms(), raw)
        sending.greenlet = gevent.spawn(self._send, link, job, sending)

    def ack(self, link, message):
        sending = self.sending.get(message["job"])
        if sending is not None and message["offset"] > sending.acked:
            sending.acked = message["offset"]
            sending.moved.set()

    def kill(self, job, reason=None):
        """A kill; with a ``reason`` (the master refused the file: too large, no room) the
        job fails, saying it, instead of ending killed."""
        sending = self.sending.pop(job, None)
        if sending is None:
            return None
        sending.greenlet.kill(block=False)
        if isinstance(reason, str):
            log.warning("fetch %s of %s stopped by the master: %s", job, sending.path, reason[:500])
            state, stderr = JobState.FAILED, "pcci: fetch refused: %s\n" % reason[:2000]
        else:
            state, stderr = JobState.KILLED, "pcci: the fetch was killed after %d bytes\n" % sending.acked
        self.on_done(result_message(job, state, None, None, sending.started, wall_ms(), "", stderr, False, False))
        return KillOutcome.SIGNALLED

    def _send(self, link, job, sending):
        try:
            result = self._send_file(link, job, sending)
        except CopyRefused as exc:
            log.warning("fetch %s of %s refused: %s", job, sending.path, exc)
            result = result_message(job, JobState.FAILED, None, None, sending.started, wall_ms(), "",
                                    "pcci: fetch refused: %s\n" % exc, False, False)
        except Exception as exc:        # a bug: the fetch still ends
            log.exception("fetch %s of %s failed (a bug)", job, sending.path)
            result = copy_failed(job, exc, sending.started, wall_ms())
        if self.sending.get(job) is sending:
            del self.sending[job]
            self.on_done(result)

    def _send_file(self, link, job, sending):
        fd = open_regular(sending.path)
        try:
            size = os.fstat(fd).st_size
            offset = min(sending.acked, size)
            digest = hashlib.sha256()
            done = 0
            while done < offset:            # the master holds these already: hash them only
                piece = os.pread(fd, min(self.chunk_bytes, offset - done), done)
                if not piece:
                    break
                digest.update(piece)
                done += len(piece)
            sent = offset
            while sending.acked < size:
                if sent < size and sent - sending.acked < self.in_flight * self.chunk_bytes:
                    piece = os.pread(fd, min(self.chunk_bytes, size - sent), sent)
                    if not piece:
                        raise CopyRefused("%s shrank while it was read" % sending.path)
                    digest.update(piece)
                    last = sent + len(piece) == size
                    head = {"type": protocol.FETCH_CHUNK, "job": job, "offset": sent, "bytes": size,
                            "sha256": digest.hexdigest() if last else None}
                    if sending.raw:
                        link.send_payload(encode_blob_payload(head, [("data", piece)], raw=True))
                    else:
                        link.send(dict(head, data=base64.b64encode(piece).decode("ascii")))
                    sent += len(piece)
                    continue
                sending.moved.clear()
                if not sending.moved.wait(STALL_SECONDS):
                    raise CopyRefused("the master took nothing of %s for %ds" % (sending.path, STALL_SECONDS))
            if size == 0:
                link.send({"type": protocol.FETCH_CHUNK, "job": job, "offset": 0, "bytes": 0, "data": "",
                           "sha256": digest.hexdigest()})
        finally:
            os.close(fd)
        return result_message(job, JobState.SUCCEEDED, 0, None, sending.started, wall_ms(),
                              "sent %d bytes (sha256 %s) from %s\n" % (size, digest.hexdigest(), sending.path), "",
                              False, False)
