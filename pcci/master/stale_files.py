"""Removing what the master keeps on disk for a while (uploaded files, fetched files) once
nothing uses it and it is older than the retention."""

import os


def remove_stale(directory, older_than, kept, remove):
    """``remove(path)`` each entry of ``directory`` last changed before ``older_than``
    (seconds since 1970) and not ``kept(name)``; how many. An entry gone meanwhile is skipped."""
    removed = 0
    for name in os.listdir(directory):
        if kept(name):
            continue
        path = os.path.join(directory, name)
        try:
            if os.stat(path).st_mtime < older_than:
                remove(path)
                removed += 1
        except FileNotFoundError:
            pass
    return removed
