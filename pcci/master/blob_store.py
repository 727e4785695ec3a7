"""Files uploaded for copies (``PUT /files/SHA256``), kept on the master's disk by their
sha256 until every copy of them has ended and ``pool_retention`` has passed.

A file arrives as a request body streamed to ``<state_dir>/files/SHA256.part`` in pieces
(never held in memory), and may arrive in several requests: one cut off leaves what it
brought, and the next goes on from there (``offset``). Its size is announced (``size``)
and checked against ``max_copy_bytes`` and the free disk (less what other uploads and
fetches under way will still write, ``disk_room``) before a byte is stored. When
the last byte is in, the file is hashed; it becomes ``SHA256`` if the hash is the one
its name says, and is dropped otherwise. Copies read it from there in chunks
(``copy_feeder``).
"""

import hashlib
import logging
import os
import re
import time

import gevent

from ..errors import DigestMismatch, LengthRequired, PayloadTooLarge, StorageFull, UnknownFile, UploadConflict
from .disk_room import DiskRoom
from .stale_files import remove_stale

log = logging.getLogger(__name__)

SHA256 = re.compile(r"[0-9a-f]{64}")
PIECE_BYTES = 256 * 1024


def upload_problem(size, offset, length, received, max_bytes):
    """Why an upload of ``length`` bytes at ``offset`` of a ``size``-byte file, of which
    ``received`` bytes are stored, cannot be taken; None if it can (pure)."""
    if length is None or length < 0:
        return LengthRequired("give the body's Content-Length (chunked uploads are not taken)")
    if size > max_bytes:
        return PayloadTooLarge("the file is %d bytes; the master takes files of at most %d (max_copy_bytes)"
                               % (size, max_bytes))
    if offset != received:
        return UploadConflict("the master holds %d bytes of this file: send from offset %d, not %d"
                              % (received, received, offset))
    if offset + length > size:
        return PayloadTooLarge("%d bytes from offset %d go past the announced size %d" % (length, offset, size))
    return None


class BlobStore:
    def __init__(self, directory, max_bytes, hash_in_thread=None, room=None):
        self.directory = directory
        self.max_bytes = max_bytes
        os.makedirs(directory, mode=0o700, exist_ok=True)
        # Free disk less what other uploads and fetches under way will still write (disk_room).
        self.room = room or DiskRoom(directory)
        # (function, *args) -> its value: hashing a large file off the event loop.
        self.hash_in_thread = hash_in_thread or (lambda function, *args: function(*args))
        self._receiving = set()

    def path(self, sha256):
        return os.path.join(self.directory, sha256)

    def status(self, sha256):
        """(bytes held, complete) of one file; (0, False) when none is."""
        try:
            return os.stat(self.path(sha256)).st_size, True
        except FileNotFoundError:
            pass
        try:
            return os.stat(self.path(sha256) + ".part").st_size, False
        except FileNotFoundError:
            return 0, False

    def size(self, sha256):
        """The size of a complete file, marked in use now (retention counts from the last use); UnknownFile."""
        try:
            os.utime(self.path(sha256))
            return os.stat(self.path(sha256)).st_size
        except FileNotFoundError:
            raise UnknownFile("no uploaded file has sha256 %s (PUT /files/%s first)" % (sha256, sha256))

    def receive(self, sha256, size, offset, length, read):
        """Store ``length`` bytes at ``offset`` from ``read(n)`` (a request body); (held, complete).
        What arrived before a broken body stays, for the next upload to go on from."""
        held, complete = self.status(sha256)
        if complete:
            if held != size:
                raise UploadConflict("the master holds this file with %d bytes, not %d" % (held, size))
            return held, True
        if sha256 in self._receiving:
            raise UploadConflict("another upload of %s is under way" % sha256)
        problem = upload_problem(size, offset, length, held, self.max_bytes)
        if problem is not None:
            raise problem
        key = ("upload", sha256)
        self.room.claim(key, size - held, length)
        self._receiving.add(sha256)
        try:
            held = self._append(self.path(sha256) + ".part", held, length, read,
                                lambda count: self.room.wrote(key, count))
        finally:
            self._receiving.discard(sha256)
            self.room.release(key)
        if held < size:
            return held, False
        return size, self._seal(sha256)

    @staticmethod
    def _append(part, held, length, read, wrote):
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            left = length
            while left:
                data = read(min(left, PIECE_BYTES))
                if not data:
                    break
                view = memoryview(data)
                while view:
                    try:
                        written = os.write(fd, view)
                    except OSError as exc:
                        # The master's disk, not the client: what was written stays, to go on from.
                        raise StorageFull("storing the upload failed after %d bytes (%s); they are kept: send the "
                                          "rest from offset %d once there is room" % (held, exc.strerror or exc, held))
                    view = view[written:]
                    held += written
                    wrote(written)
                left -= len(data)
        finally:
            os.close(fd)
        return held

    def _seal(self, sha256):
        part = self.path(sha256) + ".part"
        digest = self.hash_in_thread(_file_sha256, part)
        if digest != sha256:
            os.unlink(part)
            raise DigestMismatch("the bytes received have sha256 %s, not %s; they were dropped: upload the file "
                                 "again" % (digest, sha256))
        os.rename(part, self.path(sha256))
        return True

    def purge(self, older_than, in_use):
        """Remove files (and cut-off uploads) last used before ``older_than`` (seconds since
        1970) that no running copy reads; how many."""
        def kept(name):
            sha256 = name[:-5] if name.endswith(".part") else name
            return not SHA256.fullmatch(sha256) or sha256 in in_use or sha256 in self._receiving
        return remove_stale(self.directory, older_than, kept, os.unlink)


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(piece)
    return digest.hexdigest()


def blob_purge_loop(blobs, core, retention_seconds, fetched=None):
    """Now and then, files no running copy reads and none used for pool_retention; and
    fetched files (fetch_sink) of pools that ended longer ago than that."""
    from .retention import purge_interval
    while True:
        gevent.sleep(purge_interval(retention_seconds))
        in_use = {pool.copy.blob for pool in list(core.active.values()) if pool.copy is not None and pool.copy.blob}
        try:
            removed = blobs.purge(time.time() - retention_seconds, in_use)
            if fetched is not None:
                removed += fetched.purge(time.time() - retention_seconds, set(core.active))
        except OSError as exc:
            log.warning("purging uploaded files failed: %s; will try again", exc)
            continue
        if removed:
            log.info("purged %d uploaded file(s) past retention", removed)
