"""Open a directory by its absolute path without following a symbolic link anywhere on
the way, so that the descriptor returned is the directory the path names *now*, not one
a link (swapped in a moment ago) points to.

Where the kernel has it (Linux >= 5.6), ``openat2(2)`` with ``RESOLVE_NO_SYMLINKS |
RESOLVE_BENEATH`` from a descriptor of ``/`` resolves the whole path in one call and
fails with ELOOP at any link. Python has no binding for it; it is called by number
through libc's ``syscall()``: 437 on every architecture PCCI runs on (it was added to
the common syscall table: x86_64, i386, aarch64, 32-bit arm, riscv64, ppc64le, s390x).
Elsewhere -- an older kernel, a seccomp filter that refuses it, another architecture --
the path is walked from ``/`` one component at a time, each opened with
``O_NOFOLLOW | O_DIRECTORY`` relative to the previous one: as race-free, one system
call per component. Either way a failure is explained by the walk, which names the
component that is missing, not a directory, or a link.
"""

import errno
import functools
import os
import stat

OPENAT2_NUMBER = 437
OPENAT2_MACHINES = {"x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv6l", "armv7l", "armv8l",
                    "riscv64", "ppc64le", "s390x"}
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# openat2 missing or refused (old kernel, seccomp): walk instead.
UNAVAILABLE_ERRNOS = {errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG}


class NotReached(Exception):
    """The directory cannot be opened as named; the message says which component and why."""


class _Openat2:
    """The openat2 syscall through ctypes, loaded at the first copy: a worker that never
    copies does not pay for ctypes."""

    def __init__(self):
        import ctypes
        import platform
        self.ctypes = ctypes
        self.function = None
        if platform.machine() not in OPENAT2_MACHINES:
            return
        try:
            function = ctypes.CDLL(None, use_errno=True).syscall
        except (OSError, AttributeError):
            return
        function.restype = ctypes.c_long
        self.function = function

        class OpenHow(ctypes.Structure):
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
        self.OpenHow = OpenHow


@functools.lru_cache(maxsize=1)
def _loaded():
    return _Openat2()


def openat2_directory(parts):
    """A descriptor of /parts[0]/parts[1]/..., resolved by openat2 with no link followed;
    None when openat2 is not available here (the caller walks); OSError as the kernel says."""
    openat2 = _loaded()
    if openat2.function is None:
        return None
    ctypes = openat2.ctypes
    how = openat2.OpenHow(DIRECTORY_FLAGS, 0, RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)
    root = os.open("/", DIRECTORY_FLAGS)
    try:
        fd = openat2.function(ctypes.c_long(OPENAT2_NUMBER), ctypes.c_int(root),
                              ctypes.c_char_p(os.fsencode("/".join(parts) or ".")), ctypes.byref(how),
                              ctypes.c_size_t(ctypes.sizeof(how)))
        if fd < 0:
            number = ctypes.get_errno()
            if number in UNAVAILABLE_ERRNOS:
                return None
            raise OSError(number, os.strerror(number))
        return fd
    finally:
        os.close(root)


def walk_directory(parts):
    """A descriptor of /parts[0]/..., each component opened relative to the one before with
    O_NOFOLLOW; NotReached naming the component that stopped it."""
    fd = os.open("/", DIRECTORY_FLAGS)
    try:
        for depth, part in enumerate(parts):
            try:
                next_fd = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise NotReached(_why(fd, part, "/" + "/".join(parts[:depth + 1]), exc))
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_directory(parts, use_openat2=True):
    """A descriptor (O_DIRECTORY, O_CLOEXEC) of the directory /parts[0]/..., reached
    without following any symbolic link; NotReached with the reason otherwise."""
    if use_openat2:
        try:
            fd = openat2_directory(parts)
        except OSError:
            fd = None       # refused: the walk finds which component and why
        if fd is not None:
            return fd
    return walk_directory(parts)


def _why(parent_fd, part, path, exc):
    try:
        found = os.stat(part, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        found = None
    if found is not None and stat.S_ISLNK(found.st_mode):
        return "%s is a symbolic link; a copy never follows one (give the real path)" % path
    if isinstance(exc, FileNotFoundError):
        return "%s does not exist" % path
    if found is not None and not stat.S_ISDIR(found.st_mode):
        return "%s is not a directory" % path
    return "cannot open the directory %s: %s" % (path, exc.strerror or exc)
