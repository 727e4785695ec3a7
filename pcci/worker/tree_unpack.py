"""A directory tree sent as a tar stream (`pcci copy -r`), unpacked beneath its destination
without ever leaving it.

The tar comes from a client, so each member is checked before anything is made
(``member_problem``, pure): a relative, plain name (no absolute path, no ``..``, no
empty or ``.`` component but a leading ``./``), and a kind that is a directory, a
regular file or a symbolic link whose target stays beneath the destination (not
absolute, no climbing out with ``..``). Hard links, devices, FIFOs and anything else are
refused. The whole tar is checked before the first entry is written, so a refused tar
changes nothing.

Then every entry is made relative to descriptors: the destination directory is opened
without following a link (``no_follow``), and each directory on the way to an entry is
opened with ``O_NOFOLLOW | O_DIRECTORY`` from the one before -- a symbolic link in the
tree (one the tar made, or one that was there) is never followed, so nothing lands
outside. A file is written to a temporary name of its own beside it, gets its mode
(the tar's permission bits), is fsync'd and renamed over the old entry; an existing
directory in the way of a file, or a non-directory in the way of a directory, is
refused. Modes are kept; owners are not (an ``owner`` given for the copy applies to all).
"""

import os
import posixpath
import stat

from .file_copy import CopyRefused, open_parent, temporary_name

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_BYTES = 1024 * 1024
MAX_MEMBERS = 1000000


def member_parts(name):
    """The path components of a member's name, or None if the name is not plain."""
    if name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", "."):
        return []
    parts = name.split("/")
    if name.startswith("/") or "\0" in name or any(part in ("", ".", "..") for part in parts):
        return None
    return parts


def link_stays_inside(depth, target):
    """Whether a link ``depth`` directories below the destination, to ``target``, points
    beneath it: relative, its ``..`` only at the start (after a name, ``..`` would climb
    from wherever that name leads, another link included) and no more of them than
    ``depth`` (pure)."""
    if not target or target.startswith("/") or "\0" in target:
        return False
    parts = [part for part in target.split("/") if part not in ("", ".")]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    return ups <= depth and ".." not in parts[ups:]


def member_problem(member):
    """Why a tar member may not be unpacked beneath the destination, or None (pure)."""
    parts = member_parts(member.name)
    if parts is None:
        return "%r is not a plain relative path (absolute, or with .. or //)" % member.name
    if member.isdir() or member.isreg():
        return None
    if member.issym():
        if not link_stays_inside(len(parts) - 1, member.linkname):
            return "%r is a symbolic link to %r, outside the destination" % (member.name, member.linkname)
        return None
    kind = "a hard link" if member.islnk() else "a device or FIFO" if (member.ischr() or member.isblk() or
                                                                      member.isfifo()) else "of an unknown kind"
    return "%r is %s; a copy makes only directories, files and links within it" % (member.name, kind)


def checked_members(tar):
    """Every member of the tar, each checked, before anything is written; CopyRefused."""
    members = []
    for member in tar:
        problem = member_problem(member)
        if problem is not None:
            raise CopyRefused("the directory's tar stream is refused: %s" % problem)
        members.append(member)
        if len(members) > MAX_MEMBERS:
            raise CopyRefused("the tar stream has more than %d entries" % MAX_MEMBERS)
    return members


def unpack(tar_path_fd, dest, uid=-1, gid=-1, use_openat2=True):
    """Unpack the tar read from the open descriptor beneath ``dest`` (made if missing);
    (files, directories, links, bytes) made, or CopyRefused."""
    parent, name = posixpath.split(dest)
    parent_fd = open_parent(parent, use_openat2)
    try:
        root_fd = _directory_at(parent_fd, name, 0o755, dest)
    finally:
        os.close(parent_fd)
    import tarfile          # here: an idle worker does not keep tarfile, shutil, bz2 and lzma (0.8 MB)
    counts = [0, 0, 0, 0]
    try:
        with os.fdopen(os.dup(tar_path_fd), "rb") as handle:
            handle.seek(0)
            try:
                with tarfile.open(fileobj=handle, mode="r:") as tar:
                    members = checked_members(tar)
                    for member in members:
                        _make(tar, member, root_fd, dest, uid, gid, counts)
                    # Directories' modes last, deepest first, as tar does: a read-only one is filled first.
                    for member in sorted((m for m in members if m.isdir()), key=lambda m: -len(m.name)):
                        _set_directory_mode(root_fd, member_parts(member.name), member.mode & 0o7777)
            except tarfile.TarError as exc:
                raise CopyRefused("the directory's tar stream is damaged: %s" % exc)
    except OSError as exc:
        raise CopyRefused("unpacking beneath %s failed: %s" % (dest, exc.strerror or exc))
    finally:
        os.close(root_fd)
    return tuple(counts)


def _directory_at(dir_fd, name, mode, shown):
    """Open (making it first if missing) the directory ``name`` in ``dir_fd``, never through a link."""
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise CopyRefused("%s is not a directory reached without a symbolic link (%s)"
                          % (shown, exc.strerror or exc))


def _make(tar, member, root_fd, dest, uid, gid, counts):
    parts = member_parts(member.name)
    if not parts:                       # the tree's root: the destination itself (its mode comes last)
        return
    dir_fd, shown = root_fd, dest
    opened = []
    try:
        for part in parts[:-1]:
            shown = shown + "/" + part
            dir_fd = _directory_at(dir_fd, part, 0o755, shown)
            opened.append(dir_fd)
        name, shown = parts[-1], shown + "/" + parts[-1]
        if member.isdir():
            fd = _directory_at(dir_fd, name, 0o700, shown)
            try:
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
            finally:
                os.close(fd)
            counts[1] += 1
        elif member.issym():
            _replace(dir_fd, name, shown, lambda temporary: os.symlink(member.linkname, temporary, dir_fd=dir_fd))
            counts[2] += 1
        else:
            counts[3] += _write_file(tar, member, dir_fd, name, shown, uid, gid)
            counts[0] += 1
    finally:
        for fd in opened:
            os.close(fd)


def _set_directory_mode(root_fd, parts, mode):
    fd = root_fd
    try:
        for part in parts:
            next_fd = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            if fd != root_fd:
                os.close(fd)
            fd = next_fd
        os.fchmod(fd, mode)
    finally:
        if fd != root_fd:
            os.close(fd)


def _replace(dir_fd, name, shown, make):
    """Make an entry under a temporary name, then rename it over ``name`` (not a directory)."""
    try:
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise CopyRefused("%s is a directory; the copy has a file or link there" % shown)
    temporary = temporary_name(name)
    make(temporary)
    try:
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        os.unlink(temporary, dir_fd=dir_fd)
        raise


def _write_file(tar, member, dir_fd, name, shown, uid, gid):
    source = tar.extractfile(member)

    def make(temporary):
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
        try:
            for piece in iter(lambda: source.read(READ_BYTES), b""):
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, member.mode & 0o7777)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temporary, dir_fd=dir_fd)
            raise
        os.close(fd)
    _replace(dir_fd, name, shown, make)
    return member.size
