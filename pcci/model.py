"""Jobs and pools as the master keeps them, and the one place a job changes state.

Every job state change goes through ``change_job_state``, which knows the legal moves
(``states.LEGAL_MOVES``) and records the time. Pure: callers pass ``now_ms``. The
JSON the API shows is drawn in ``pcci.master.views``.
"""

import collections
from dataclasses import dataclass
from typing import Optional

from .states import LEGAL_MOVES, TERMINAL, JobState, PoolStatus

# What the master keeps of a worker between its runs; ``instance`` is the worker process
# that synced last (protocol.instance), None for an older worker.
WorkerRecord = collections.namedtuple("WorkerRecord", "name address first_seen last_seen stats labels instance",
                                      defaults=(None,))


class IllegalTransition(Exception):
    pass


class Job:
    __slots__ = ("pool_id", "worker", "state", "exit_code", "signal", "start_time", "end_time",
                 "stdout", "stderr", "stdout_truncated", "stderr_truncated", "position")

    def __init__(self, pool_id, worker, state=JobState.QUEUED, exit_code=None, signal=None,
                 start_time=None, end_time=None, stdout="", stderr="",
                 stdout_truncated=False, stderr_truncated=False, position=0):
        self.pool_id = pool_id
        self.position = position    # where the worker stood in the submitted list
        self.worker = worker
        self.state = JobState(state)
        self.exit_code = exit_code
        self.signal = signal
        self.start_time = start_time
        self.end_time = end_time
        self.stdout = stdout
        self.stderr = stderr
        self.stdout_truncated = stdout_truncated
        self.stderr_truncated = stderr_truncated

    @property
    def job_id(self):
        return job_id(self.pool_id, self.worker)

    @property
    def ended(self):
        return self.state in TERMINAL


def job_id(pool_id, worker):
    return "%s/%s" % (pool_id, worker)


def split_job_id(text):
    pool_id, _, worker = text.partition("/")
    return pool_id, worker


def change_job_state(job, new_state, now_ms):
    """The one place a job changes state; terminal states get their end time."""
    new_state = JobState(new_state)
    if new_state not in LEGAL_MOVES.get(job.state, ()):
        raise IllegalTransition("job %s cannot go from %s to %s" % (job.job_id, job.state.value, new_state.value))
    job.state = new_state
    if new_state is JobState.RUNNING and job.start_time is None:
        job.start_time = now_ms
    if new_state in TERMINAL and job.end_time is None:
        job.end_time = now_ms


def apply_result(job, result, now_ms):
    """Record a worker's checked result message (``protocol.check_result``) on a job that accepts it."""
    change_job_state(job, result["state"], now_ms)
    job.exit_code = result["exitCode"]
    job.signal = result["signal"]
    job.start_time = result["startTime"] or job.start_time
    job.end_time = result["endTime"] or now_ms
    job.stdout = result["stdout"]
    job.stderr = result["stderr"]
    job.stdout_truncated = result["stdoutTruncated"]
    job.stderr_truncated = result["stderrTruncated"]


def accepts_result(job):
    """A result counts once: only a job that is running (or was given up as lost) takes it."""
    return job.state in (JobState.RUNNING, JobState.LOST)


class Rollout:
    """How a pool's jobs start: at most ``batch`` at once (None: all at once), no new one
    once more than ``max_failures`` failed, and jobs for offline workers waiting for them
    until ``queue_until`` (ms; None: an offline worker's job ends ``offline`` at once)."""

    __slots__ = ("batch", "max_failures", "queue_until")

    def __init__(self, batch=None, max_failures=None, queue_until=None):
        self.batch, self.max_failures, self.queue_until = batch, max_failures, queue_until

    def to_json(self):
        return {"batch": self.batch, "maxFailures": self.max_failures, "queueUntil": self.queue_until}

    @classmethod
    def from_json(cls, data):
        return cls(data.get("batch"), data.get("maxFailures"), data.get("queueUntil"))


@dataclass(frozen=True)
class CopySpec:
    """A file a pool writes on its workers instead of running a command (POST /copy):
    ``content`` is its bytes in base64, as the copy frame carries them; ``size`` and
    ``sha256`` describe the decoded bytes."""

    dest: str
    content: str
    size: int
    sha256: str
    mode: Optional[int] = None
    owner: Optional[str] = None
    # The sha256 of a file uploaded with PUT /files (then ``content`` is ""): sent in chunks
    # (protocol file_stream) from the master's copy of it, whatever its size.
    blob: Optional[str] = None
    unpack: Optional[str] = None    # "tar": the file is a tree's tar stream, unpacked beneath dest
    # A reverse copy (POST /fetch): ``dest`` is the path each worker reads and sends back.
    fetch: bool = False
    # False: this copy goes from the master to every worker, even where the cluster relays
    # (POST /copy ``"relay": false``, ``pcci copy --no-relay``; pcci.master.relay_plan).
    relay: bool = True

    def to_json(self) -> dict:
        """The stored form (the pools table's copy column)."""
        stored = {"dest": self.dest, "content": self.content, "mode": self.mode, "owner": self.owner,
                  "bytes": self.size, "sha256": self.sha256}
        if self.blob is not None:
            stored["blob"] = self.blob
        if self.unpack is not None:
            stored["unpack"] = self.unpack
        if self.fetch:
            stored["fetch"] = True
        if not self.relay:
            stored["relay"] = False
        return stored

    @classmethod
    def from_json(cls, data: dict) -> "CopySpec":
        return cls(data["dest"], data["content"], data["bytes"], data["sha256"], data.get("mode"),
                   data.get("owner"), data.get("blob"), data.get("unpack"), bool(data.get("fetch")),
                   data.get("relay") is not False)


class Pool:
    __slots__ = ("pool_id", "cmd", "created", "timeout", "env", "cwd", "jobs", "end_time", "submitted_by",
                 "submitted_from", "killed_by", "target", "rollout", "user", "copy", "stdin", "scheduled_by",
                 "scheduled_due", "_order", "_scan")

    def __init__(self, pool_id, cmd, created, jobs, timeout=None, env=None, cwd=None, end_time=None,
                 submitted_by=None, submitted_from=None, killed_by=None, target=None, rollout=None, user=None,
                 copy=None, stdin=None, scheduled_by=None, scheduled_due=None):
        self.pool_id = pool_id
        self.scheduled_by = scheduled_by        # the schedule that made it, or None
        self.scheduled_due = scheduled_due      # the due time (wall ms) it was made for
        self.stdin = stdin                      # the jobs' standard input, base64 (None: /dev/null)
        self.submitted_by = submitted_by        # the API token's name
        self.submitted_from = submitted_from    # the client's address
        self.target = target                    # {"workers": ..., "exclude": ...} as submitted
        self.rollout = rollout                  # a Rollout: batch size, failures allowed, offline queueing
        self.user = user                        # the user its jobs run as (None: each worker's default)
        self.copy = copy                        # a CopySpec: a file to write instead of a command
        self.killed_by = killed_by              # the token name of the last kill
        self.cmd = cmd
        self.created = created
        self.timeout = timeout
        self.env = env
        self.cwd = cwd
        self.jobs = jobs            # worker name -> Job, in the order the workers were listed
        self.end_time = end_time
        self._order, self._scan = [], 0

    @property
    def done(self):
        """Whether every job has ended. Amortised O(1): it is asked after every result, and
        jobs never leave the ended states, so the scan resumes where it stopped."""
        if len(self._order) != len(self.jobs):
            self._order, self._scan = list(self.jobs.values()), 0
        while self._scan < len(self._order) and self._order[self._scan].ended:
            self._scan += 1
        return self._scan == len(self._order)

    @property
    def status(self):
        return PoolStatus.DONE if self.done else PoolStatus.RUNNING

    @property
    def exit_code(self):
        """The largest exit code of the pool's jobs, as clush -S and pdsh report it."""
        codes = [j.exit_code for j in self.jobs.values() if j.exit_code is not None]
        return max(codes) if codes else None

    @property
    def start_time(self):
        starts = [j.start_time for j in self.jobs.values() if j.start_time is not None]
        return min(starts) if starts else None

    def close_if_done(self, now_ms):
        """Set the pool's end time once every job has ended; True if it just ended."""
        if self.end_time is None and self.done:
            self.end_time = now_ms
            return True
        return False

    def state_counts(self):
        counts = {}
        for job in self.jobs.values():
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        return counts
