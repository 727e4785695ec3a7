"""The open-file limit of a daemon: the master holds one socket per worker, the worker a
few descriptors per running job; the soft limit of 1024 is too low for either."""

import resource


def raise_open_file_limit() -> int:
    """Take the hard limit on open files, not the soft one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
