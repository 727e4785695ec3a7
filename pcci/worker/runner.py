"""Runs jobs: a fast spawn that never blocks the event loop, bounded output, group kills.

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
children and grandchildren, and a kill (SIGTERM, SIGKILL after ``kill_grace``) reaches
them all.
"""

import logging
import os
import signal
import subprocess

import gevent
import gevent.os
import gevent.socket

from ..clock import monotonic, wall_ms
from ..protocol import result_message
from ..states import JobState, KillOutcome
from . import orphans

log = logging.getLogger(__name__)

# After the job's shell exits, wait this long for its pipes to close: a command that
# leaves a daemon holding stdout must not hold the job open forever.
PIPE_DRAIN_SECONDS = 2.0


class Capture:
    """One output stream: at most `cap` bytes kept, the rest drained and counted as truncated."""

    def __init__(self, cap):
        self.cap = cap
        self.kept = bytearray()
        self.truncated = False

    def read_to_eof(self, fd):
        while True:
            try:
                data = gevent.os.nb_read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            room = self.cap - len(self.kept)
            if len(data) > room:
                self.truncated = True
                data = data[:max(room, 0)]
            self.kept += data


def _wait_exit(process, timeout):
    """Wait cooperatively for the process to exit; False if the timeout came first."""
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


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "SIG%d" % number


class RunningJob:
    def __init__(self, job_id, process, timeout):
        self.job_id = job_id
        self.process = process
        self.timeout = timeout
        self.start_time = wall_ms()
        self.end_reason = None      # JobState.KILLED or JobState.TIMED_OUT when we ended it
        self.greenlet = None

    def signal_group(self, signum):
        try:
            os.killpg(self.process.pid, signum)
            return True
        except (ProcessLookupError, PermissionError):
            return False


class Runner:
    """Starts, tracks and kills the worker's jobs; calls on_done(result) as each ends."""

    def __init__(self, shell, output_cap, kill_grace, on_done, worker_id=""):
        self.shell = shell
        self.output_cap = output_cap
        self.kill_grace = kill_grace
        self.on_done = on_done
        self.worker_id = worker_id  # marks the jobs' environment, so a crashed worker's jobs can be found
        self.jobs = {}

    def running_ids(self):
        return list(self.jobs)

    def start(self, job_id, cmd, timeout=None, env=None, cwd=None):
        if job_id in self.jobs:
            return
        environment = dict(os.environ)
        environment.update({str(k): str(v) for k, v in (env or {}).items()})
        environment.update(orphans.job_environment(job_id, self.worker_id))
        try:
            process = subprocess.Popen(
                [self.shell, "-c", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=cwd or None, env=environment, start_new_session=True)
        except (OSError, ValueError) as exc:   # ValueError: a NUL byte in cmd, env or cwd
            log.warning("job %s could not start: %s", job_id, exc)
            self.on_done(failed_to_start(job_id, exc, self.shell, cwd, wall_ms()))
            return
        job = RunningJob(job_id, process, timeout)
        self.jobs[job_id] = job
        job.greenlet = gevent.spawn(self._supervise, job)
        log.debug("job %s started as pid %d", job_id, process.pid)

    def _supervise(self, job):
        process = job.process
        os.set_blocking(process.stdout.fileno(), False)
        os.set_blocking(process.stderr.fileno(), False)
        out, err = Capture(self.output_cap), Capture(self.output_cap)
        readers = [gevent.spawn(out.read_to_eof, process.stdout.fileno()),
                   gevent.spawn(err.read_to_eof, process.stderr.fileno())]
        try:
            if not _wait_exit(process, job.timeout):
                log.info("job %s timed out after %ss; killing its process group", job.job_id, job.timeout)
                self._terminate(job, JobState.TIMED_OUT)
                _wait_exit(process, None)
            returncode = process.wait()
            gevent.joinall(readers, timeout=PIPE_DRAIN_SECONDS)
            gevent.killall(readers)
        finally:
            process.stdout.close()
            process.stderr.close()
            self.jobs.pop(job.job_id, None)
        result = build_result(job.job_id, returncode, job.end_reason, job.start_time, wall_ms(),
                              bytes(out.kept), bytes(err.kept), out.truncated, err.truncated)
        log.debug("job %s ended: %s", job.job_id, result["state"])
        self.on_done(result)

    def _terminate(self, job, reason):
        """SIGTERM to the whole group now, SIGKILL to whatever is left after the grace period."""
        if job.end_reason is None:
            job.end_reason = reason
        job.signal_group(signal.SIGTERM)
        gevent.spawn_later(self.kill_grace, job.signal_group, signal.SIGKILL)

    def kill(self, job_id):
        """Kill one job's process group; returns what happened."""
        job = self.jobs.get(job_id)
        if job is None:
            return KillOutcome.NOT_RUNNING
        self._terminate(job, JobState.KILLED)
        return KillOutcome.SIGNALLED

    def kill_all(self, wait_seconds):
        greenlets = [job.greenlet for job in self.jobs.values()]
        for job_id in list(self.jobs):
            self.kill(job_id)
        gevent.joinall(greenlets, timeout=wait_seconds)


def build_result(job_id, returncode, end_reason, start_time, end_time,
                 stdout, stderr, stdout_truncated, stderr_truncated):
    """The result message for an ended process (pure)."""
    if returncode < 0:
        exit_code, signal_text = 128 - returncode, signal_name(-returncode)
    else:
        exit_code, signal_text = returncode, None
    if end_reason is not None:
        state = end_reason
    else:
        state = JobState.SUCCEEDED if returncode == 0 else JobState.FAILED
    return result_message(job_id, state, exit_code, signal_text, start_time, end_time,
                          stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
                          stdout_truncated, stderr_truncated)


def failed_to_start(job_id, exc, shell, cwd, when):
    """A job that never ran: failed, with no exit code (no process exited) and the reason
    on stderr. A missing working directory is not a missing command."""
    if cwd and isinstance(exc, (FileNotFoundError, NotADirectoryError)) and exc.filename == cwd:
        why = "the working directory %s does not exist" % cwd
    elif cwd and isinstance(exc, PermissionError) and exc.filename == cwd:
        why = "the working directory %s is not accessible to the worker's user" % cwd
    elif isinstance(exc, FileNotFoundError) and exc.filename in (shell, None):
        why = "the shell %s does not exist (the worker's 'shell' setting)" % shell
    else:
        why = str(exc)
    message = "pcci: the job could not start: %s\n" % why
    return result_message(job_id, JobState.FAILED, None, None, when, when, "", message, False, False)
