"""The worker's jobs: admitted at most ``max_jobs`` at a time, watched until their last
process is gone, killed with everything they started.

* Admission: a job the master sends while ``max_jobs`` run waits in a queue and starts
  when one ends, so a burst of submissions cannot exhaust the worker's processes,
  descriptors or event loop. A spawn that fails for want of a resource (too many
  open files, no memory for a fork) leaves the job queued and is tried again; it is
  never reported as the job's failure.
* End: a job ends when its shell has exited and its other processes are gone -- with
  a job cgroup, when the cgroup is empty; without, when nothing holds its stdout and
  stderr any more (processes of its group that closed them are reported in stderr).
  Its output is complete then; if it cannot be (a process outside the job holds a
  pipe), what was kept is flagged truncated, never silently cut.
* Kill and timeout: SIGTERM to the process group and the cgroup (or, without one, to
  every process carrying the job's PCCI_JOB_ID), SIGKILL after ``kill_grace``.
* Whatever is raised: every job and copy ends with a result. An exception nobody
  expected (a bug) while choosing its user, making its cgroup, spawning it, reading its
  output, watching it or writing a copied file fails that job with the reason in its
  stderr, logs one record with the traceback, kills what it had started, and the
  runner goes on. A job never stays ``running`` unwatched.

The seams a test breaks on purpose are parameters: ``spawn`` (start the process),
``read_output`` (read one stream into its Capture), ``write_file`` (a copy), ``users``
and ``cgroups``.

Spawning, waiting and capture are in ``job_process``; the result message is built in
``results``.
"""

import base64
import collections
import errno
import logging
import os
import signal

import gevent

from ..clock import monotonic, wall_ms
from ..states import JobState, KillOutcome
from . import file_copy, job_process, job_user, orphans
from .cgroups import shell_prefix
from .live_output import LiveOutput
from .results import (build_result, cancelled, copied, copy_failed, copy_refused, failed_to_start,
                      left_behind_note, start_failed, watch_failed)

log = logging.getLogger(__name__)

# A spawn that failed for want of a resource is tried again after this long (or when a job ends).
RETRY_SPAWN_SECONDS = 0.5
SPAWN_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM}
# Once the job's processes are gone, how long its pipes may take to report the end.
PIPE_CLOSE_SECONDS = 2.0
# After SIGKILL, how long to wait for the processes to be gone before giving up on them.
KILL_SETTLE_SECONDS = 5.0

JobSpec = collections.namedtuple("JobSpec", "job_id cmd timeout env cwd user stdin")


class OutputReadFailed(Exception):
    """Reading a job's output raised: its watch ends (the job is killed and fails)."""

    def __init__(self, cause):
        super().__init__("reading its output failed: %s: %s" % (type(cause).__name__, cause))
        self.__cause__ = cause


class RunningJob:
    def __init__(self, job_id, process, timeout, cgroup):
        self.job_id = job_id
        self.process = process
        self.timeout = timeout
        self.cgroup = cgroup
        self.start_time = wall_ms()
        self.deadline = None if timeout is None else monotonic() + timeout
        self.end_reason = None      # JobState.KILLED or JobState.TIMED_OUT when we ended it
        self.killed_at = None       # monotonic time of the SIGKILL, once sent
        self.greenlet = None
        self.live = None            # its LiveOutput, when output is forwarded while it runs
        self.reported = False       # its result has been handed to on_done

    def remaining(self):
        return None if self.deadline is None else max(0.0, self.deadline - monotonic())


class Runner:
    """Starts, tracks and kills the worker's jobs; calls on_done(result) as each ends."""

    def __init__(self, shell, output_cap, kill_grace, on_done, worker_id="", max_jobs=64, cgroups=None,
                 live_channel=None, users=None, spawn=job_process.spawn,
                 read_output=job_process.Capture.read_to_eof, write_file=file_copy.write):
        self.shell = shell
        self.spawn = spawn                  # (argv, environment, cwd, umask) -> a Popen
        self.read_output = read_output      # (capture, fd): read a stream to its end
        self.write_file = write_file        # (dest, data, mode, owner) -> file_copy.Written
        self.users = users or job_user.JobUsers()     # which users jobs may run as
        self.live_channel = live_channel    # a live_output.LiveChannel, or None: output only in results
        self.output_cap = output_cap
        self.kill_grace = kill_grace
        self.on_done = on_done
        self.worker_id = worker_id  # marks the jobs' environment, so a crashed worker's jobs can be found
        self.max_jobs = max_jobs
        self.cgroups = cgroups      # a cgroups.JobCgroups, or None for process groups only
        self.jobs = {}              # job id -> RunningJob
        self.queue = collections.OrderedDict()   # job id -> JobSpec, waiting for a free slot
        self.copying = set()        # job ids of files being written
        self._retry = None

    def running_ids(self):
        return list(self.jobs)

    def queued_ids(self):
        return list(self.queue)

    def outstanding_ids(self):
        """Every job the worker has and has not finished: what it tells the master at sync."""
        return list(self.jobs) + list(self.queue) + list(self.copying)

    # -- admission ------------------------------------------------------------------------
    def start(self, job_id, cmd, timeout=None, env=None, cwd=None, user=None, stdin=None):
        """``stdin``: base64 of the bytes to feed the job's standard input (None: /dev/null)."""
        if job_id in self.jobs or job_id in self.queue:
            return
        self.queue[job_id] = JobSpec(job_id, cmd, timeout, env, cwd, user, stdin)
        self._admit()

    def _admit(self):
        while self.queue and len(self.jobs) < self.max_jobs and self._retry is None:
            spec = next(iter(self.queue.values()))
            if not self._spawn_safely(spec):
                self._retry = gevent.spawn_later(RETRY_SPAWN_SECONDS, self._retry_admit)
                return
            del self.queue[spec.job_id]

    def _retry_admit(self):
        self._retry = None
        self._admit()

    def _spawn_safely(self, spec):
        """_spawn, where a bug costs that job (failed, the reason in its stderr), never the
        runner or the link that asked for it."""
        try:
            return self._spawn(spec)
        except Exception as exc:
            log.exception("job %s: starting it failed (a bug); it fails", spec.job_id)
            self.on_done(start_failed(spec.job_id, exc, wall_ms()))
            return True

    def _spawn(self, spec):
        """Start one job; False if it must wait (no resources now), True if it is handled."""
        try:
            entry = self.users.entry_for(spec.user)
        except job_user.JobUserRefused as exc:
            self._failed(spec, exc)
            return True
        cgroup = self._make_cgroup(spec.job_id)
        try:
            return self._spawn_in(spec, entry, cgroup)
        except Exception:
            self._remove_cgroup(cgroup)
            raise

    def _spawn_in(self, spec, entry, cgroup):
        environment = dict(os.environ)
        if entry is not None:
            environment.update(job_user.environment(entry))
        environment.update({str(k): str(v) for k, v in (spec.env or {}).items()})
        environment.update(orphans.job_environment(spec.job_id, self.worker_id))
        prefix = ""
        if cgroup is not None:
            environment.update(self.cgroups.environment(cgroup))
            prefix = shell_prefix()
        if entry is None:
            argv, cwd, umask = [self.shell, "-c", prefix + spec.cmd], spec.cwd, -1
        else:
            argv = job_user.argv(self.shell, spec.cmd, entry, prefix)
            cwd = spec.cwd or (entry.pw_dir if os.path.isdir(entry.pw_dir) else "/")
            umask = job_user.JOB_UMASK
        try:
            if spec.stdin is None:
                process = self.spawn(argv, environment, cwd, umask)
            else:
                process = self.spawn(argv, environment, cwd, umask, stdin=base64.b64decode(spec.stdin))
        except OSError as exc:
            self._remove_cgroup(cgroup)
            if exc.errno in SPAWN_RESOURCE_ERRNOS and not isinstance(exc, (FileNotFoundError, PermissionError)):
                log.warning("job %s must wait: cannot start a process now (%s); %d job(s) queued",
                            spec.job_id, exc.strerror, len(self.queue))
                return False
            self._failed(spec, exc)
            return True
        except ValueError as exc:     # a NUL byte in cmd, env or cwd
            self._remove_cgroup(cgroup)
            self._failed(spec, exc)
            return True
        job = RunningJob(spec.job_id, process, spec.timeout, cgroup)
        self.jobs[spec.job_id] = job
        job.greenlet = gevent.spawn(self._supervise_safely, job)
        log.debug("job %s started as pid %d", spec.job_id, process.pid)
        return True

    def _failed(self, spec, exc):
        log.warning("job %s could not start: %s", spec.job_id, exc)
        self.on_done(failed_to_start(spec.job_id, exc, self.shell, spec.cwd, wall_ms()))

    def _make_cgroup(self, job_id):
        if self.cgroups is None:
            return None
        try:
            return self.cgroups.create(job_id)
        except FileExistsError:
            return self.cgroups.path(job_id)
        except OSError as exc:
            log.warning("job %s runs without a cgroup: cannot create one: %s", job_id, exc)
            return None

    def _remove_cgroup(self, cgroup):
        if cgroup is not None and not self.cgroups.remove(cgroup):
            log.warning("job cgroup %s still has processes; left in place", cgroup)

    # -- watching ---------------------------------------------------------------------------
    def _supervise_safely(self, job):
        """A bug while watching a job costs that job (killed, failed, its result said so),
        never a job that runs on unwatched and is never reported."""
        try:
            self._supervise(job)
        except Exception as exc:
            if job.reported:
                # Its result is spooled: the failure was on the way out, which the spool covers.
                log.exception("job %s: handing on its result failed; it stays spooled", job.job_id)
            else:
                log.exception("job %s: watching it failed (a bug); killing it", job.job_id)
                job.killed_at = monotonic()
                self._signal_all(job, signal.SIGKILL)
                self.jobs.pop(job.job_id, None)
                job.reported = True
                self.on_done(watch_failed(job.job_id, job.start_time, wall_ms(), exc))
                gevent.spawn(self._reap_killed, job)
            self._admit()

    def _reap_killed(self, job):
        """After a failed watch: reap the killed shell (no zombie) and remove its cgroup once empty."""
        try:
            job_process.wait_exit(job.process, KILL_SETTLE_SECONDS)
            job.process.poll()
            if job.cgroup is not None:
                self._wait_until(job, lambda: not self.cgroups.populated(job.cgroup), gevent.sleep)
                self._remove_cgroup(job.cgroup)
        except Exception:
            log.exception("job %s: cleaning up after it failed", job.job_id)

    def _read_stream(self, job, capture, fd):
        """One output stream; a failure to read it ends the job (its supervisor is told),
        for unread output would block the job's processes and hide their end."""
        try:
            self.read_output(capture, fd)
        except Exception as exc:
            if not job.reported and job.greenlet is not None and not job.greenlet.dead:
                job.greenlet.kill(OutputReadFailed(exc), block=False)
            else:
                log.exception("job %s: reading its output failed after it ended", job.job_id)

    def _supervise(self, job):
        process = job.process
        os.set_blocking(process.stdout.fileno(), False)
        os.set_blocking(process.stderr.fileno(), False)
        if self.live_channel is not None:
            job.live = LiveOutput(job.job_id, self.output_cap, self.live_channel)
            out, err = job.live.captures["stdout"], job.live.captures["stderr"]
        else:
            out, err = job_process.Capture(self.output_cap), job_process.Capture(self.output_cap)
        readers = [gevent.spawn(self._read_stream, job, out, process.stdout.fileno()),
                   gevent.spawn(self._read_stream, job, err, process.stderr.fileno())]
        if process.stdin is not None:
            readers.append(gevent.spawn(job_process.feed, process.stdin, process.pcci_stdin))
        note = b""
        try:
            if not job_process.wait_exit(process, job.remaining()):
                self._terminate(job, JobState.TIMED_OUT)
                job_process.wait_exit(process, None)
            returncode = process.wait()
            if job.cgroup is not None:
                self._wait_until(job, lambda: not self.cgroups.populated(job.cgroup), gevent.sleep)
                gevent.joinall(readers, timeout=PIPE_CLOSE_SECONDS)
            else:
                self._wait_until(job, lambda: out.at_eof and err.at_eof,
                                 lambda seconds: gevent.joinall(readers, timeout=seconds))
                if job_process.group_alive(process.pid):
                    note = left_behind_note(job_process.group_size(process.pid)).encode()
            for capture in (out, err):
                # Something outside the job still holds the pipe: keep what came, say it is cut.
                capture.truncated = capture.truncated or not capture.at_eof
        finally:
            gevent.killall(readers)
            if job.live is not None:
                job.live.stop()
            process.stdout.close()
            process.stderr.close()
            if process.returncode is not None:      # else it is being killed: _reap_killed removes it
                self._remove_cgroup(job.cgroup)
            self.jobs.pop(job.job_id, None)
        result = build_result(job.job_id, returncode, job.end_reason, job.start_time, wall_ms(),
                              out.kept, err.kept + note, out.truncated, err.truncated)
        out.kept = err.kept = None      # a large output is held once, in the result
        log.debug("job %s ended: %s", job.job_id, result["state"])
        job.reported = True
        self.on_done(result)
        self._admit()

    def _wait_until(self, job, done, pause):
        """Check `done` (cheap) until true, calling pause(seconds) between checks (which may
        return early when something happened); the job's timeout applies, and after a
        kill the wait is bounded by kill_grace plus a settling time."""
        delay = 0.005
        while not done():
            if job.deadline is not None and monotonic() >= job.deadline and job.end_reason is None:
                self._terminate(job, JobState.TIMED_OUT)
            if job.killed_at is not None and monotonic() - job.killed_at > KILL_SETTLE_SECONDS:
                log.warning("job %s: processes remain %ss after SIGKILL; giving up on them",
                            job.job_id, KILL_SETTLE_SECONDS)
                return False
            pause(delay)
            delay = min(delay * 2, 0.25)
        return True

    # -- killing ----------------------------------------------------------------------------
    def _terminate(self, job, reason):
        """SIGTERM to everything the job started now, SIGKILL to whatever is left after the grace."""
        if job.end_reason is None:
            job.end_reason = reason
            if reason is JobState.TIMED_OUT:
                log.info("job %s timed out after %ss; killing it", job.job_id, job.timeout)
        self._signal_all(job, signal.SIGTERM)
        gevent.spawn_later(self.kill_grace, self._kill_now, job)

    def _kill_now(self, job):
        if job.killed_at is None and job.job_id in self.jobs:
            job.killed_at = monotonic()
            self._signal_all(job, signal.SIGKILL)

    def _signal_all(self, job, signum):
        try:
            os.killpg(job.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
        if job.cgroup is not None:
            self.cgroups.signal(job.cgroup, signum)
        else:
            # Without a cgroup, daemons that left the group are found by their marker.
            for pid in orphans.find_job_processes(self.worker_id, job.job_id):
                try:
                    os.kill(pid, signum)
                except (ProcessLookupError, PermissionError):
                    pass

    def copy(self, job_id, dest, data, mode=None, owner=None):
        """Write a file the master sent (file_copy), off the event loop; its result as a job's."""
        if job_id in self.copying:
            return
        self.copying.add(job_id)
        gevent.spawn(self._copy, job_id, dest, data, mode, owner)

    def _copy(self, job_id, dest, data, mode, owner):
        start = wall_ms()
        try:
            # The thread hands back what was raised as a value: raised there, gevent would
            # print its own traceback for an ordinary refusal.
            written, exc = gevent.get_hub().threadpool.apply(_outcome, (self.write_file, dest, data, mode, owner))
            if exc is None:
                result = copied(job_id, dest, written.size, written.sha256, start, wall_ms())
            elif isinstance(exc, file_copy.CopyRefused):
                log.warning("copy %s to %s refused: %s", job_id, dest, exc)
                result = copy_refused(job_id, str(exc), start, wall_ms())
            else:
                log.error("copy %s to %s failed (a bug)", job_id, dest, exc_info=exc)
                result = copy_failed(job_id, exc, start, wall_ms())
        except Exception as exc:        # the thread pool itself (a bug): the copy still ends
            log.exception("copy %s to %s failed (a bug)", job_id, dest)
            result = copy_failed(job_id, exc, start, wall_ms())
        finally:
            self.copying.discard(job_id)
        self.on_done(result)

    def output_from(self, job_id, offsets):
        """The master's live copy of a running job's output ends at these byte offsets."""
        job = self.jobs.get(job_id)
        if job is not None and job.live is not None:
            job.live.rewind(offsets)

    def kill(self, job_id):
        """Kill one job (or take it off the queue); returns what happened."""
        if job_id in self.queue:
            del self.queue[job_id]
            self.on_done(cancelled(job_id, wall_ms()))
            return KillOutcome.CANCELLED
        job = self.jobs.get(job_id)
        if job is None:
            return KillOutcome.NOT_RUNNING
        self._terminate(job, JobState.KILLED)
        return KillOutcome.SIGNALLED

    def kill_all(self, wait_seconds):
        for job_id in list(self.queue):
            self.kill(job_id)
        greenlets = [job.greenlet for job in self.jobs.values()]
        for job_id in list(self.jobs):
            self.kill(job_id)
        gevent.joinall(greenlets, timeout=wait_seconds)


def _outcome(function, *args):
    """(value, None) or (None, the exception): run in a thread, nothing is raised across."""
    try:
        return function(*args), None
    except Exception as exc:
        return None, exc
