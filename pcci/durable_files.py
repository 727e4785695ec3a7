"""Files that survive a power cut: written, fsync'd, renamed into place, their directory fsync'd.

A write is on the disk only once the file is fsync'd; a new name (a create, a rename,
a mkdir) only once its directory is fsync'd too. Both sides use these for what they
promise to keep: the worker's spooled results, the master's state directory.
"""

import os


def fsync_directory(path):
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def make_directories(path, mode=0o750):
    """os.makedirs, with each directory it creates made durable in its parent."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            pass
        fsync_directory(os.path.dirname(directory))


def replace_durably(path, data):
    """Write `data` to `path` so that after a power cut it holds either the old file or all of `data`."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
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
