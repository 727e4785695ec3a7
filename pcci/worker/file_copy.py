"""A file the master sends, written on this worker as clush -c, pdcp and salt-cp do, but
atomically and without following a symbolic link anywhere.

1. The destination must be absolute and plain (no ``..``, ``.`` or ``//``).
2. Its directory is opened without following any link on the way (``no_follow``:
   openat2 with RESOLVE_NO_SYMLINKS, else a component-by-component O_NOFOLLOW walk).
   A path through a link is refused, naming the link. Everything after happens
   relative to that descriptor, so swapping a directory on the path for a link
   (even with renameat2 RENAME_EXCHANGE, at any moment) cannot move the write
   elsewhere: the copy lands in the directory the path named when it was opened, or
   is refused.
3. The bytes go to a file of this copy's own: an unnamed O_TMPFILE where the
   filesystem has it (linked under a unique name once complete), else a new file
   ``.NAME.pcci-<random>`` made with O_CREAT|O_EXCL|O_NOFOLLOW. Two copies to one
   destination never share it.
4. Written, then ``fchown`` (when an owner is given), then ``fchmod`` -- in that order,
   because a change of owner clears the setuid and setgid bits -- then fsync.
5. Renamed over the destination, and the directory fsync'd. A reader sees the old file
   or the new one, never half of one; a power cut leaves one of the two. Of two copies
   racing to one destination the later rename wins; each reports the size and sha256
   of the bytes it wrote.

The final component: an existing regular file is replaced (its mode is kept when none
is given); an existing *symbolic link* is replaced by the new file -- the link itself,
never its target, which is not read nor written; a directory or any other kind of
file is refused.
"""

import collections
import errno
import grp
import hashlib
import os
import pwd
import secrets
import stat

from .no_follow import NotReached, open_directory

TEMPORARY_MARK = ".pcci-"       # a temporary name is "." + NAME + ".pcci-" + 16 hex digits
# Room in NAME_MAX (255) for the dot, the mark and the random part.
TEMPORARY_NAME_CHARS = 255 - 1 - len(TEMPORARY_MARK) - 16

Written = collections.namedtuple("Written", "size sha256")


class CopyRefused(Exception):
    """The file was not written; the message says why."""


def check_destination(dest):
    """(directory, name) of an acceptable destination path, else CopyRefused (pure)."""
    if not dest.startswith("/"):
        raise CopyRefused("the destination %r is not an absolute path" % dest)
    if "\0" in dest:
        raise CopyRefused("the destination %r holds a NUL character" % dest)
    parts = dest.split("/")[1:]
    if not parts or not parts[-1] or any(part in ("", ".", "..") for part in parts):
        raise CopyRefused("the destination %r is not a plain path to a file (no //, . or .., no trailing /)" % dest)
    return "/" + "/".join(parts[:-1]), parts[-1]


def owner_ids(owner):
    """(uid, gid) for "user", "user:group" or ":group" (-1 where not given); CopyRefused if unknown."""
    if not owner:
        return -1, -1
    user, _, group = owner.partition(":")
    try:
        uid = pwd.getpwnam(user).pw_uid if user else -1
        gid = grp.getgrnam(group).gr_gid if group else (pwd.getpwnam(user).pw_gid if user and ":" in owner else -1)
    except (KeyError, ValueError) as exc:
        raise CopyRefused("owner %r: no such user or group on this node (%s)" % (owner, exc.args[0]))
    return uid, gid


def open_parent(directory, use_openat2=True):
    """A descriptor of ``directory`` (absolute), reached without following a link; CopyRefused."""
    try:
        return open_directory(directory.split("/")[1:] if directory != "/" else [], use_openat2)
    except NotReached as exc:
        raise CopyRefused(str(exc))
    except OSError as exc:
        raise CopyRefused("cannot open the directory %s: %s" % (directory, exc.strerror or exc))


def temporary_name(name):
    """A fresh name for this copy's file beside ``name``: hidden, marked, random (pure but for the random)."""
    return ".%s%s%s" % (name[:TEMPORARY_NAME_CHARS], TEMPORARY_MARK, secrets.token_hex(8))


def write(dest, data, mode=None, owner=None, use_openat2=True, use_tmpfile=True):
    """Write ``data`` (bytes) at ``dest`` atomically: Written(size, sha256) of what was
    written, or CopyRefused with the reason. ``use_openat2`` and ``use_tmpfile`` off
    take the fallbacks a kernel or filesystem without them takes."""
    directory, name = check_destination(dest)
    uid, gid = owner_ids(owner)
    dir_fd = open_parent(directory, use_openat2)
    temporary = None
    try:
        try:
            existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and not (stat.S_ISREG(existing.st_mode) or stat.S_ISLNK(existing.st_mode)):
            raise CopyRefused("%s exists and is not a regular file or a symbolic link (a directory or a device "
                              "is never replaced)" % dest)
        if mode is None:
            mode = existing.st_mode & 0o7777 if existing is not None and stat.S_ISREG(existing.st_mode) else 0o644
        fd, temporary = _new_file(dir_fd, name, use_tmpfile)
        try:
            _write_all(fd, data)
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)     # before fchmod: a change of owner clears setuid/setgid
            os.fchmod(fd, mode)
            os.fsync(fd)
            if temporary is None:
                temporary = _link_unnamed(fd, dir_fd, name)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        temporary = None
        os.fsync(dir_fd)
    except CopyRefused:
        raise
    except OSError as exc:
        if isinstance(exc, IsADirectoryError):
            raise CopyRefused("%s is a directory (it became one while the file was written)" % dest)
        raise CopyRefused("writing %s failed: %s" % (dest, exc.strerror or exc))
    finally:
        if temporary is not None:
            _remove(temporary, dir_fd)
        os.close(dir_fd)
    return Written(len(data), hashlib.sha256(data).hexdigest())


def _new_file(dir_fd, name, use_tmpfile):
    """(fd, None) for an unnamed file in the directory, else (fd, its unique name)."""
    # The unnamed file is named through /proc (linkat with AT_EMPTY_PATH would need
    # CAP_DAC_READ_SEARCH): without /proc, a named one from the start.
    if use_tmpfile and hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(".", os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=dir_fd), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    while True:
        temporary = temporary_name(name)
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                           dir_fd=dir_fd), temporary
        except FileExistsError:     # 2^-64 a try: pick again
            continue


def _link_unnamed(fd, dir_fd, name):
    """Give the unnamed file a unique name in the directory (to rename over the destination:
    linkat cannot replace a file); its name."""
    while True:
        temporary = temporary_name(name)
        try:
            os.link("/proc/self/fd/%d" % fd, temporary, dst_dir_fd=dir_fd, follow_symlinks=True)
            return temporary
        except FileExistsError:
            continue


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _remove(name, dir_fd):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
