"""Files that survive a power cut: written, fsync'd, renamed into place, their directory fsync'd.

A write is on the disk only once the file is fsync'd; a new name (a create, a rename,
a mkdir) only once its directory is fsync'd too. Both sides use these for what they
promise to keep: the worker's spooled results, the master's state directory.

What they create is private whatever the umask: files 0600, directories 0700 (the mode
is set after the create, as the umask can only take bits away). A pool store holds
every command, its environment and its output; a spooled result, a job's output.
"""

import logging
import os
import stat

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700


def fsync_directory(path):
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def make_directories(path, mode=PRIVATE_DIRECTORY):
    """os.makedirs, with each directory it creates made durable in its parent and given
    exactly ``mode`` (one that exists already is left as it is)."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
            os.chmod(directory, mode)
        except FileExistsError:
            pass
        fsync_directory(os.path.dirname(directory))


def replace_durably(path, data):
    """Write `data` (bytes, or a tuple of parts written one after the other) to `path` so
    that after a power cut it holds either the old file or all of `data`."""
    temporary = path + ".tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(descriptor, PRIVATE_FILE)
            for part in data if isinstance(data, tuple) else (data,):
                handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        try:
            os.unlink(temporary)    # a full disk: leave no half-written file behind
        except OSError:
            pass
        raise
    os.replace(temporary, path)
    fsync_directory(os.path.dirname(path) or ".")


def private_file(path, siblings=()):
    """Create ``path`` empty and 0600 if it is missing; if it exists and group or others
    may read or write it (made by an older release, or under a loose umask), take those
    bits away, with one log line. ``siblings`` are suffixes of files that go with it
    (a database's ``-wal``), tightened the same way when present."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    os.close(descriptor)
    for name in [path] + [path + suffix for suffix in siblings]:
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, mode & 0o700)
            log.warning("%s was readable or writable by other users (mode %04o); made it private (%04o)",
                        name, mode, mode & 0o700)
