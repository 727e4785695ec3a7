"""One job's processes: a fast spawn that never blocks the event loop, a cooperative wait
for its exit, and bounded capture of its output.

Why not ``gevent.subprocess``: it always fork()s the whole interpreter and runs Python
in the child before exec (~3-10 ms a spawn). The stdlib ``subprocess.Popen`` (not
monkey-patched: nothing in PCCI patches it) uses vfork + exec (~0.7 ms). The spawn
itself is a short synchronous call; everything after it is cooperative:

* exit: a pidfd (Linux >= 5.3) becomes readable when the child exits, so the hub waits
  on it like a socket; then ``Popen.wait()`` reaps the zombie at once. This is the only
  place children are reaped -- no SIGCHLD child watcher competes for them.
* output: the pipes are non-blocking and read through the hub, keeping at most
  ``cap`` bytes of each stream and draining the rest so the child never blocks.

Each job gets its own session (``start_new_session``), so its process group holds its
children and grandchildren; with a job cgroup (``pcci.worker.cgroups``) the shell
first moves itself into it, and then even a daemon that calls setsid() stays in reach.

What one job of `true` costs (docs/performance.md, "The worker's CPU per job"): the
job itself, `sh -c true` exec'd, ~0.9-1.1 ms of CPU (the dynamic loader and dash: the
floor, whatever spawns it); the worker ~1.3-1.4 ms, of which this spawn, wait and reap
~0.2-0.28 ms, the runner's greenlets, pipes and result ~0.3 ms, the spool ~0.16 ms
(0.55 ms with a file per result), the link's TLS frames the rest. ``os.posix_spawn``
(glibc's clone(CLONE_VFORK)) would save ~0.1 ms of the worker's CPU per job, but in
Python 3.11 it can neither change directory (``cwd``) nor set the umask a ``user:``
job needs, so it would be a second spawn path for some jobs only: not taken. A cgroup
per job adds ~0.06 ms (mkdir, the shell's write to cgroup.procs, cgroup.events, rmdir);
reusing emptied cgroups would save the mkdir and rmdir, ~0.03 ms: not taken either.
"""

import logging
import os
import subprocess

import gevent
import gevent.os
import gevent.socket

from ..clock import monotonic

log = logging.getLogger(__name__)


class Capture:
    """One output stream: at most `cap` bytes kept, the rest drained and counted as truncated.
    ``grew`` (if set) is called after each read that kept bytes: live output follows it."""

    def __init__(self, cap, grew=None):
        self.cap = cap
        self.kept = bytearray()
        self.truncated = False
        self.at_eof = False
        self.grew = grew

    def read_to_eof(self, fd):
        while True:
            try:
                data = gevent.os.nb_read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.keep(data)
        self.at_eof = True

    def keep(self, data):
        room = self.cap - len(self.kept)
        if len(data) > room:
            self.truncated = True
            data = data[:max(room, 0)]
        if data:
            self.kept += data
            if self.grew is not None:
                try:
                    self.grew()
                except Exception:
                    # Live output is best effort: a bug there must not stop the capture
                    # that the result is made of.
                    log.exception("live output of a job failed; its output now comes with its result only")
                    self.grew = None


def spawn(argv, environment, cwd, umask=-1, stdin=None):
    """Start ``argv`` (``shell -c cmd``, or that behind a switch of user) in a new session
    with piped stdout and stderr; stdin is /dev/null, or a pipe that ``feed`` fills with
    the ``stdin`` bytes (kept as ``process.pcci_stdin``)."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or None, env=environment,
                               start_new_session=True, umask=umask)
    process.pcci_stdin = stdin
    return process


def feed(pipe, data):
    """Write ``data`` to the job's stdin through the hub, then close it (end of file). A
    job that exits or closes its stdin before reading it all is not an error (EPIPE)."""
    fd = pipe.fileno()
    os.set_blocking(fd, False)
    view = memoryview(data or b"")
    try:
        while view:
            try:
                written = os.write(fd, view[:65536])
            except BlockingIOError:
                gevent.socket.wait_write(fd)
                continue
            view = view[written:]
    except OSError:
        pass                # EPIPE: the job did not want the rest
    finally:
        pipe.close()


def wait_exit(process, timeout):
    """Wait cooperatively for the process to exit; False if the timeout came first."""
    if timeout is not None and timeout <= 0:
        return process.poll() is not None
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return _poll_exit(process, timeout)
    try:
        gevent.socket.wait_read(pidfd, timeout=timeout)
        return True
    except gevent.socket.timeout:
        return False
    finally:
        os.close(pidfd)


def _poll_exit(process, timeout):
    deadline = None if timeout is None else monotonic() + timeout
    while process.poll() is None:
        if deadline is not None and monotonic() >= deadline:
            return False
        gevent.sleep(0.02)
    return True


def group_alive(pgid):
    """Whether a process of the group is still running. A zombie is not: a killed child
    whose shell had exited waits for init (or a subreaper) to reap it, and kill(2) still
    finds it, so a quick ``killpg(pgid, 0)`` that finds something is checked in /proc."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return group_size(pgid) > 0


def group_size(pgid):
    """How many processes of the group are running, zombies left out (read from /proc:
    only when something seemed left)."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit() and _running_in_group(name, pgid):
            count += 1
    return count


def _running_in_group(pid, pgid):
    """From /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and
    parentheses, so the fields are read after its last ')'."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X")
