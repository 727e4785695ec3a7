"""The vocabulary of jobs, pools and kills: str enums whose values go into JSON unchanged.

Validation, the OpenAPI document, the CLI and the docs all take their words from here.
"""

from enum import Enum


class JobState(str, Enum):
    QUEUED = "queued"                  # waiting: for its turn in a rolling batch, or for its worker to connect
    RUNNING = "running"                # sent to a connected worker
    SUCCEEDED = "succeeded"            # exited 0
    FAILED = "failed"                  # exited non-zero, or could not start
    KILLED = "killed"                  # ended by a kill request
    TIMED_OUT = "timed_out"            # ended by its timeout
    LOST = "lost"                      # its worker stayed away longer than lost_after
    OFFLINE = "offline"                # listed worker was known but not connected at submit
    UNKNOWN_WORKER = "unknown_worker"  # listed worker has never registered
    SKIPPED = "skipped"                # a rolling batch stopped (maxFailures) before its turn: never ran


class PoolStatus(str, Enum):
    RUNNING = "running"
    DONE = "done"


class OfflinePolicy(str, Enum):
    """What a pool does with a job whose worker is not connected at its turn."""
    FAIL = "fail"                      # the job ends offline at once
    QUEUE = "queue"                    # the job waits for its worker (until queueTimeout)


class KillOutcome(str, Enum):
    """What a kill request did to one worker's job."""
    SIGNALLED = "signalled"            # the worker signalled the job's process group
    NOT_RUNNING = "not_running"        # the worker had no such job running (it had just ended)
    CANCELLED = "cancelled"            # the job was waiting for a free slot (max_jobs); it ends killed, never ran
    NOT_IN_POOL = "not_in_pool"        # the named worker has no job in this pool
    ALREADY_ENDED = "already_ended"    # the job had ended before the request
    WORKER_OFFLINE = "worker_offline"  # the job's worker is not connected
    NO_REPLY = "no_reply"              # the worker did not answer within kill_reply_timeout


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED, JobState.TIMED_OUT})
TERMINAL = FINISHED | {JobState.LOST, JobState.OFFLINE, JobState.UNKNOWN_WORKER, JobState.SKIPPED}
# What counts against a rolling batch's maxFailures (a kill or an absent worker does not).
FAILURES = frozenset({JobState.FAILED, JobState.TIMED_OUT, JobState.LOST})
# Outcomes a worker itself may report in a kill_result.
WORKER_KILL_OUTCOMES = frozenset({KillOutcome.SIGNALLED, KillOutcome.NOT_RUNNING, KillOutcome.CANCELLED})

# A lost job may still be finished by a late result: the worker kept it on disk.
LEGAL_MOVES = {
    JobState.QUEUED: {JobState.RUNNING, JobState.LOST, JobState.OFFLINE, JobState.UNKNOWN_WORKER,
                      JobState.SKIPPED} | FINISHED,
    JobState.RUNNING: {JobState.LOST} | FINISHED,
    JobState.LOST: set(FINISHED),
}


def values(enum):
    """The JSON words of an enum, in declaration order."""
    return [member.value for member in enum]


class NotifyOn(str, Enum):
    """When a pool's notification is sent (``notify[].on``), by how the ended pool came out."""
    DONE = "done"                      # every job succeeded
    FAILED = "failed"                  # some job did not succeed (failed, killed, timed out, lost, offline, ...)
    FINISHED = "finished"              # the pool ended, either way


class DeliveryState(str, Enum):
    """Where one notification of a pool stands (GET /pool/ID's ``notifications[].state``)."""
    WAITING = "waiting"                # the pool has not ended yet
    PENDING = "pending"                # to be sent: its next attempt is due at ``nextAttempt``
    SENT = "sent"                      # the receiver answered 2xx
    FAILED = "failed"                  # every attempt failed; no more are made
    SKIPPED = "skipped"                # the pool's outcome is not one of its ``on``: nothing is sent
