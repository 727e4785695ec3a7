"""Leaving the pcci command without the interpreter's teardown.

Once a command is done and its output flushed, what Python does at exit (clearing every
module, collecting what they held) changes nothing a user can see and costs a few
milliseconds of a command that should take a few dozen. So ``exit_now`` flushes stdout
and stderr and ends the process with ``os._exit``, but only when nothing else is owed at
exit; in any other case it leaves as ``sys.exit`` does:

* an ``atexit`` callback is registered (logging's, a coverage tool's, a TemporaryDirectory's
  finalizer): it must run;
* a thread other than the main one is alive: Python waits for a non-daemon one;
* a flush fails (a closed pipe): Python's own exit reports it and gives its status, as before;
* the status is not an int from 0 to 255 (``sys.exit`` prints a message or masks it).

Files the command writes (--outdir, a fetch) are closed by then (each is written within a
``with``), so nothing buffered is left behind in them.
"""

import atexit
import os
import sys


def nothing_owed_at_exit():
    """Whether the interpreter's teardown would do nothing but free memory."""
    callbacks = getattr(atexit, "_ncallbacks", None)     # CPython's; without it, assume some
    if callbacks is None or callbacks():
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def exit_now(status):
    """End the process with ``status`` (0 for None), its output flushed first."""
    status = 0 if status is None else status
    if type(status) is not int or not 0 <= status <= 255 or not nothing_owed_at_exit():
        sys.exit(status)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(status)            # Python's exit flushes again and reports the failure, as before
    os._exit(status)
