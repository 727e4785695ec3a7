"""The file a streamed copy (protocol ``file_stream``) grows chunk by chunk, kept on disk
so that a copy cut off by a dropped link or a restarted master goes on from where it
stopped, not from zero.

It lives beside its destination, as ``.NAME.pcci-<16 hex digits of sha256(job id)>``:
the same name after a reconnect, another for every copy. The directory is opened
without following any link (``no_follow``), and so is the file: an existing file of
that name is taken up only if it is a plain file of our own with one link (a hard
link planted there to another file would otherwise be written through). Once all the
bytes are in, the sha256 is checked and the file gets its owner and mode, is fsync'd
and renamed over the destination, as ``file_copy.write`` does with a whole file.
"""

import collections
import hashlib
import os
import stat

from .file_copy import (TEMPORARY_MARK, TEMPORARY_NAME_CHARS, CopyRefused, Written, check_destination, open_parent,
                        owner_ids)
from . import tree_unpack

# What a tree's copy made beneath its destination.
Unpacked = collections.namedtuple("Unpacked", "files directories links size sha256")

READ_BYTES = 1024 * 1024


def partial_name(name, job_id):
    """This copy's file beside ``name`` (pure): hidden, marked, fixed for the job."""
    tag = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return ".%s%s%s" % (name[:TEMPORARY_NAME_CHARS], TEMPORARY_MARK, tag)


class PartialFile:
    """One streamed copy's file: ``open`` it (new, or resumed), ``append`` chunks in order,
    then ``finish`` or ``discard``. ``offset`` is how many bytes it holds."""

    def __init__(self, job_id, dest, size, sha256, mode=None, owner=None, use_openat2=True, unpack=None):
        self.dest, self.size, self.sha256 = dest, size, sha256
        self.unpack = unpack        # "tar": a directory tree, unpacked beneath dest (tree_unpack)
        if unpack not in (None, "tar"):
            raise CopyRefused("this worker cannot unpack %r (only a tar stream)" % unpack)
        self.mode, self.owner = mode, owner
        self.directory, self.name = check_destination(dest)
        self.uid, self.gid = owner_ids(owner)
        self.partial = partial_name(self.name, job_id)
        self.use_openat2 = use_openat2
        self.dir_fd = self.fd = None
        self.offset = 0
        self.hash = hashlib.sha256()

    def open(self):
        """Open the directory and this copy's file (made, or taken up where it ends); CopyRefused."""
        self.dir_fd = open_parent(self.directory, self.use_openat2)
        try:
            self.fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                              dir_fd=self.dir_fd)
        except OSError as exc:
            self.close()
            raise CopyRefused("cannot open %s/%s: %s" % (self.directory, self.partial, exc.strerror or exc))
        found = os.fstat(self.fd)
        if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1 or found.st_uid != os.geteuid():
            self.close()
            raise CopyRefused("%s/%s is in the way and is not this copy's own file (another owner, or more "
                              "than one link)" % (self.directory, self.partial))
        if found.st_size > self.size:
            os.ftruncate(self.fd, 0)      # not ours to resume: longer than the file it should become
        self._hash_what_is_there()

    def _hash_what_is_there(self):
        """The hash of the bytes a resumed file already holds (read back once, in pieces)."""
        self.offset = 0
        while True:
            data = os.pread(self.fd, READ_BYTES, self.offset)
            if not data:
                break
            self.hash.update(data)
            self.offset += len(data)

    def append(self, offset, data):
        """Write a chunk that starts where the file ends; False (nothing written) for one
        that does not (a chunk sent again after a reconnect)."""
        if offset != self.offset or self.offset + len(data) > self.size:
            return False
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, self.offset)
            self.offset += written
            view = view[written:]
        self.hash.update(data)
        return True

    def restart(self):
        """Empty the file, to take it again from byte 0 (bytes pulled from a relay that did
        not add up to the sha256)."""
        os.ftruncate(self.fd, 0)
        self.offset = 0
        self.hash = hashlib.sha256()

    @property
    def complete(self):
        return self.offset == self.size

    def finish(self):
        """Check the sha256, set owner and mode, fsync, rename over the destination:
        Written, or CopyRefused (the file is then removed)."""
        try:
            digest = self.hash.hexdigest()
            if digest != self.sha256:
                raise CopyRefused("the bytes received have sha256 %s, not %s as announced" % (digest, self.sha256))
            if self.unpack is not None:
                made = tree_unpack.unpack(self.fd, self.dest, self.uid, self.gid, self.use_openat2)
                self.discard()
                return Unpacked(*made, sha256=self.sha256)
            try:
                existing = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                existing = None
            if existing is not None and not (stat.S_ISREG(existing.st_mode) or stat.S_ISLNK(existing.st_mode)):
                raise CopyRefused("%s exists and is not a regular file or a symbolic link (a directory or a "
                                  "device is never replaced)" % self.dest)
            mode = self.mode
            if mode is None:
                mode = existing.st_mode & 0o7777 if existing is not None and stat.S_ISREG(existing.st_mode) else 0o644
            if self.uid != -1 or self.gid != -1:
                os.fchown(self.fd, self.uid, self.gid)      # before fchmod: it clears setuid/setgid
            os.fchmod(self.fd, mode)
            os.fsync(self.fd)
            os.rename(self.partial, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            os.fsync(self.dir_fd)
        except OSError as exc:
            self.discard()
            if isinstance(exc, IsADirectoryError):
                raise CopyRefused("%s is a directory (it became one while the file was written)" % self.dest)
            raise CopyRefused("writing %s failed: %s" % (self.dest, exc.strerror or exc))
        except CopyRefused:
            self.discard()
            raise
        self.close()
        return Written(self.size, self.sha256)

    def discard(self):
        """Remove this copy's file (a refusal, a kill)."""
        if self.dir_fd is not None:
            try:
                os.unlink(self.partial, dir_fd=self.dir_fd)
            except OSError:
                pass
        self.close()

    def close(self):
        for name in ("fd", "dir_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)
