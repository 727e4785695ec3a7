"""A file the master sends, written on this worker as clush -c, pdcp and salt-cp do, but
atomically: a temporary file in the destination's directory, its mode and owner set,
fsync'd, renamed over the destination, and the directory fsync'd. A reader sees the old
file or the new one, never half of one, and a power cut leaves one of the two.

Paths are checked first: the destination must be absolute and plain (no ``..``, no
``.``), its directory must exist and be reached without a symbolic link, and an
existing destination that is a symbolic link is refused, not followed (the link could
point anywhere, say /etc/shadow). The directory is then held open and everything
happens relative to it, so it cannot be swapped for a link midway.
"""

import grp
import os
import pwd
import stat

TEMPORARY_PREFIX = ".pcci-copy-"


class CopyRefused(Exception):
    """The file was not written; the message says why."""


def check_destination(dest):
    """(directory, name) of an acceptable destination path, else CopyRefused (pure)."""
    if not dest.startswith("/"):
        raise CopyRefused("the destination %r is not an absolute path" % dest)
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
    except KeyError as exc:
        raise CopyRefused("owner %r: no such user or group on this node (%s)" % (owner, exc.args[0]))
    return uid, gid


def write(dest, data, mode=None, owner=None):
    """Write ``data`` (bytes) at ``dest`` atomically; CopyRefused with the reason if it may not."""
    directory, name = check_destination(dest)
    if os.path.realpath(directory) != directory:
        raise CopyRefused("the directory %s is reached through a symbolic link (to %s); give the real path"
                          % (directory, os.path.realpath(directory)))
    uid, gid = owner_ids(owner)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise CopyRefused("the directory %s does not exist" % directory)
    except OSError as exc:
        raise CopyRefused("cannot open the directory %s: %s" % (directory, exc.strerror))
    temporary = "%s%s-%d" % (TEMPORARY_PREFIX, name[:100], os.getpid())
    try:
        try:
            existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and not _is_regular(existing.st_mode):
            raise CopyRefused("%s exists and is not a regular file (a symbolic link or a directory is never "
                              "replaced or followed)" % dest)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            os.unlink(temporary, dir_fd=dir_fd)         # left by a copy that died: ours to replace
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode if mode is not None else (existing.st_mode & 0o7777 if existing else 0o644))
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except CopyRefused:
        raise
    except OSError as exc:
        _remove(temporary, dir_fd)
        raise CopyRefused("writing %s failed: %s" % (dest, exc.strerror or exc))
    finally:
        os.close(dir_fd)


def _is_regular(mode):
    return stat.S_ISREG(mode)


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
