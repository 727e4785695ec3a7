"""The master's side of reverse copies (protocol ``file_fetch``, POST /fetch, `pcci fetch`):
each worker's file arrives in chunks and is spooled to ``<state_dir>/fetched/POOL/NODE``,
never held in memory, until the client downloads it (GET /pool/ID/files/NODE) and
``pool_retention`` has passed.

A chunk is stored, then acknowledged (``fetch_ack``): the worker keeps at most a couple
unacknowledged, so a slow disk slows the worker, not the master's memory. A file over
``max_copy_bytes``, or larger than the master's free disk less what other uploads and
fetches will still write and a reserve (``disk_room``), is refused before its first byte
is stored: the job is stopped (``kill`` with a ``reason``, which the worker's result
names). After a dropped link or a restart the
master tells the worker where its copy ends (``fetch_begin`` with that offset, after the
worker's sync) and the worker goes on from there. When the last chunk is in, the sha256
of the stored bytes must be the one the worker computed; the file is then complete. A
fetch whose worker reports success while the master holds no complete file (the sha256
did not match, or not every byte came: a file changed between two attempts, or a worker
that lies) fails, saying so (``checked_result``): "succeeded" means the file is here.
"""

import collections
import contextlib
import hashlib
import logging
import os
import shutil

from .. import protocol
from ..clock import monotonic
from ..errors import StorageFull
from ..states import JobState
from .answer_once import AnswerOnce
from .disk_room import DiskRoom
from .stale_files import remove_stale

log = logging.getLogger(__name__)

READ_BYTES = 1024 * 1024
# Fetches whose hash is kept while their worker is away (a hash object is a few hundred bytes).
MAX_PARKED = 10000


def node_file(node):
    """A node's name as a file name (pure): node names may hold any printable character but '/'."""
    return node.encode("utf-8").hex()


def running_fetch(core, worker, job_id):
    """The path a fetch running on ``worker`` as ``job_id`` reads, else None."""
    pool = core.find(job_id.partition("/")[0])
    if pool is None or pool.copy is None or not pool.copy.fetch:
        return None
    job = pool.jobs.get(worker)
    if job is None or job.job_id != job_id or job.state is not JobState.RUNNING:
        return None
    return pool.copy.dest


def running_fetches(core, worker):
    """(job id, path) of every fetch running on ``worker``."""
    found = []
    for pool in list(core.active.values()):
        if pool.copy is not None and pool.copy.fetch:
            job = pool.jobs.get(worker)
            if job is not None and job.state is JobState.RUNNING:
                found.append((job.job_id, pool.copy.dest))
    return found


def _prefix_hash(path, size):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        left = size
        while left:
            piece = handle.read(min(READ_BYTES, left))
            if not piece:
                break
            digest.update(piece)
            left -= len(piece)
    return digest


class Receiving:
    __slots__ = ("fd", "offset", "hash", "part", "size")

    def __init__(self, fd, offset, digest, part):
        self.fd, self.offset, self.hash, self.part = fd, offset, digest, part
        self.size = None            # the size the disk room was claimed for


class FetchSink:
    def __init__(self, directory, find_fetch, find_fetches, max_bytes, hash_in_thread=None, room=None):
        self.directory = directory
        self.find_fetch = find_fetch        # (worker, job id) -> the path it reads, while it runs
        self.find_fetches = find_fetches    # worker -> [(job id, path)] running there
        self.max_bytes = max_bytes
        self.hash_in_thread = hash_in_thread or (lambda function, *args: function(*args))
        self.streams = {}                   # (session, job id) -> Receiving
        # part path -> (offset, hash so far) of a fetch whose link went away: taken up again
        # on the redial, so the bytes held are not read back to hash them (a worker that
        # redials in a loop would make the master reread up to max_copy_bytes each time).
        self.parked = collections.OrderedDict()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.room = room or DiskRoom(directory)     # shared with the uploads (blob_store)
        self.stale = AnswerOnce()                   # chunks of fetches not running: one kill each job

    def path(self, pool_id, node):
        return os.path.join(self.directory, pool_id, node_file(node))

    def resume(self, session):
        """After the worker's sync: each fetch running there goes on from where its file ends."""
        for job_id, path in self.find_fetches(session.name):
            pool_id = job_id.partition("/")[0]
            part = self.path(pool_id, session.name) + ".part"
            try:
                offset = os.stat(part).st_size
            except FileNotFoundError:
                offset = 0
            if offset:
                log.info("fetch %s from %s goes on from byte %d", job_id, session.name, offset)
            session.send({"type": protocol.FETCH_BEGIN, "job": job_id, "path": path, "offset": offset})

    def chunk(self, session, message):
        protocol.checked(message, protocol.FETCH_CHUNK)
        job, size = message["job"], message["bytes"]
        if self.find_fetch(session.name, job) is None:
            if self.stale.due(session, job, monotonic()):
                session.send({"type": protocol.KILL, "job": job})
            return
        key = (session, job)
        receiving = self.streams.get(key) or self._open(key, job, session.name)
        if message["offset"] != receiving.offset:
            return          # sent before our last fetch_begin: the worker goes on from there
        if size > self.max_bytes or size < receiving.offset:
            self._refuse(session, key, "the file is %d bytes, over max_copy_bytes %d (or shorter than what came "
                         "already)" % (size, self.max_bytes))
            return
        if receiving.size != size:
            try:
                self.room.claim(("fetch",) + key, size - receiving.offset)
            except StorageFull as exc:
                self._refuse(session, key, "%d bytes do not fit: %s" % (size - receiving.offset, exc))
                return
            receiving.size = size
        data = protocol.chunk_data(message)
        if receiving.offset + len(data) > size:
            raise protocol.ProtocolError("fetch_chunk %s goes past the %d bytes it announced" % (job[:100], size))
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(receiving.fd, view):]
        except OSError as exc:
            # The master's disk (full, failing), not the worker: this fetch fails, the link stays.
            self._refuse(session, key, "storing it failed: %s" % (exc.strerror or exc))
            return
        receiving.hash.update(data)
        receiving.offset += len(data)
        self.room.wrote(("fetch",) + key, len(data))
        session.send({"type": protocol.FETCH_ACK, "job": job, "offset": receiving.offset})
        if receiving.offset == size and message.get("sha256") is not None:
            self._complete(key, receiving, message["sha256"])

    def checked_result(self, worker, result):
        """A fetch job's result as the master can stand by it: ``succeeded`` only when it
        holds the file whole; otherwise a failed result saying why. Any other result as it is."""
        job = result["job"]
        if result["state"] != JobState.SUCCEEDED.value or self.find_fetch(worker, job) is None:
            return result
        if os.path.exists(self.path(job.partition("/")[0], worker)):
            return result
        why = ("the master holds no whole copy of the file: the bytes it stored do not have the sha256 the worker "
               "read (the file changed while it was read?), or not all of them came")
        log.warning("fetch %s from %s reported success, but %s; it fails", job, worker, why)
        return protocol.result_message(job, JobState.FAILED, None, None, result["startTime"], result["endTime"],
                                       result["stdout"], result["stderr"] + "pcci: %s\n" % why,
                                       result["stdoutTruncated"], result["stderrTruncated"])

    def _open(self, key, job, node):
        pool_id = job.partition("/")[0]
        os.makedirs(os.path.join(self.directory, pool_id), mode=0o700, exist_ok=True)
        part = self.path(pool_id, node) + ".part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        offset = os.fstat(fd).st_size
        parked_offset, digest = self.parked.pop(part, (None, None))
        if parked_offset != offset:
            digest = hashlib.sha256()
            if offset:
                log.info("fetch %s from %s: reading back the %d bytes held to go on", job, node, offset)
                digest = self.hash_in_thread(_prefix_hash, part, offset)
        receiving = self.streams[key] = Receiving(fd, offset, digest, part)
        return receiving

    def _complete(self, key, receiving, sha256):
        self._drop(key)
        if receiving.hash.hexdigest() != sha256:
            log.warning("fetch %s: the stored bytes have sha256 %s, not %s as the worker read them (the file "
                        "changed between two attempts?); dropped", key[1], receiving.hash.hexdigest(), sha256)
            os.unlink(receiving.part)
            return
        os.rename(receiving.part, receiving.part[:-len(".part")])

    def _refuse(self, session, key, reason):
        """Stop a fetch whose file the master will not store; its job fails with the reason."""
        job = key[1]
        log.warning("fetch %s from %s refused: %s; stopping it", job, session.name, reason)
        self._drop(key, remove=True)
        session.send({"type": protocol.KILL, "job": job, "reason": "the master refused the file: " + reason})

    def _drop(self, key, remove=False):
        self.room.release(("fetch",) + key)
        receiving = self.streams.pop(key, None)
        if receiving is not None:
            os.close(receiving.fd)
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(receiving.part)

    def forget(self, session):
        """The link went away: its fetches' hashes are kept for the redial (bounded)."""
        self.stale.forget(session)
        for key in [key for key in self.streams if key[0] is session]:
            receiving = self.streams.get(key)
            self._drop(key)
            if receiving is not None:
                self.parked[receiving.part] = (receiving.offset, receiving.hash)
                while len(self.parked) > MAX_PARKED:
                    self.parked.popitem(last=False)

    def ended(self, session, job_id):
        self._drop((session, job_id))

    def open(self, pool_id, node):
        """(size, open file) of a node's complete fetched file, or None."""
        try:
            handle = open(self.path(pool_id, node), "rb")
        except (FileNotFoundError, NotADirectoryError):
            return None
        return os.fstat(handle.fileno()).st_size, handle

    def purge(self, older_than, running):
        """Remove the fetched files of pools not running whose directory was last changed
        before ``older_than`` (seconds since 1970); how many pools."""
        return remove_stale(self.directory, older_than, lambda pool_id: pool_id in running, shutil.rmtree)
