"""`pcci run` waiting for its pool: a progress line on a terminal, and Ctrl-C that stops
what it started.

The first Ctrl-C kills the pool's running jobs (PUT /kill), says so, waits briefly
for the outcomes and leaves with status 130, printing the pool id; a second Ctrl-C
leaves at once, printing the id. Off a terminal there is no progress line.
"""

from ..states import JobState

EXIT_INTERRUPTED = 130
# How long, after a Ctrl-C, to wait for the killed jobs to end before leaving.
KILL_WAIT_SECONDS = 5
ENDED_BADLY = {JobState.FAILED.value, JobState.KILLED.value, JobState.TIMED_OUT.value, JobState.LOST.value,
               JobState.OFFLINE.value, JobState.UNKNOWN_WORKER.value}
NOT_ENDED = {JobState.QUEUED.value, JobState.RUNNING.value}


def progress_line(pool):
    """'12/20 done · 1 failed · 7 running' from a pool's JSON (pure)."""
    states = pool.get("states") or {}
    total = sum(states.values())
    running = sum(count for state, count in states.items() if state in NOT_ENDED)
    failed = sum(count for state, count in states.items() if state in ENDED_BADLY)
    return "%d/%d done \u00b7 %d failed \u00b7 %d running" % (total - running, total, failed, running)


def is_whole_pool(answer):
    """Whether a submit's answer is the pool as GET /pool/ID gives it (a master that waited),
    not the bare acceptance (jobs' states alone)."""
    return all(isinstance(job, dict) for job in (answer.get("jobs") or {}).values())


class Waiter:
    def __init__(self, client, pool_id, err, show_progress):
        self.client, self.pool_id, self.err, self.show_progress = client, pool_id, err, show_progress
        self.step = 1 if show_progress else 30      # seconds each request waits on the master

    def accepted(self, pool_id):
        self.pool_id = pool_id

    def submit_and_wait(self, submit):
        """``submit(wait, accepted)`` sends the pool and waits on the master in the same
        request (one round trip when it ends within the wait); then as ``wait``. A Ctrl-C
        once the pool is accepted kills it, as in ``wait``."""
        try:
            answer = submit(self.step, self.accepted)
        except KeyboardInterrupt:
            if self.pool_id is None:
                raise                   # not accepted yet: nothing to kill
            self._clear()
            return self.interrupted()
        self.pool_id = answer["id"]
        return self.wait(answer if is_whole_pool(answer) else None)

    def wait(self, first=None):
        """The finished pool, or None after a Ctrl-C (what happened is on stderr); ``first``
        the pool as an answer already gave it."""
        try:
            return self._wait(first)
        except KeyboardInterrupt:
            self._clear()
            return self.interrupted()

    def _wait(self, first=None):
        while True:
            pool, first = first or self.client.pool(self.pool_id, wait=self.step), None
            if self.show_progress:
                self.err.write("\r" + progress_line(pool) + "\x1b[K")
                self.err.flush()
            if pool["status"] == "done":
                self._clear()
                return pool

    def _clear(self):
        if self.show_progress:
            self.err.write("\r\x1b[K")
            self.err.flush()

    def interrupted(self):
        """After a Ctrl-C: kill the pool's running jobs, wait briefly, say what happened."""
        self.err.write("pcci: interrupted: killing the running jobs of pool %s (Ctrl-C again to leave now)\n"
                       % self.pool_id)
        self.err.flush()
        try:
            outcomes = self.client.kill(self.pool_id)["workers"]
            signalled = sorted(name for name, outcome in outcomes.items() if outcome in ("signalled", "cancelled"))
            pool = self.client.pool(self.pool_id, wait=KILL_WAIT_SECONDS)
            self.err.write("pcci: killed on %d worker(s)%s; %s\n" % (
                len(signalled), (": " + ",".join(signalled)) if signalled else "", progress_line(pool)))
        except KeyboardInterrupt:
            pass
        self.err.write("pcci: pool %s\n" % self.pool_id)
        self.err.flush()
        return None
