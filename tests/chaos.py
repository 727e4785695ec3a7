"""A chaos soak with a history checker.

A steady stream of pools (short jobs, long jobs, kills, timeouts) runs on three
workers while a seeded scheduler injects faults: the master SIGKILLed and restarted,
the master's power cut (its state on tests/powercut.py), a worker SIGKILLed and
restarted, a worker's power cut, a worker frozen (SIGSTOP, SIGCONT), and its link cut,
slowed or made lossy (tests/linkproxy.py). Every submission, answer and final state is
recorded; `check` then verifies the invariants and `Soak.summary` says what happened.

Bounded: the fault window lasts `seconds`, every wait has a limit, and every process,
mount and relay is stopped by the caller's fixtures.
"""

import os
import random
import re
import signal
import threading
import time

from conftest import wait_until
from linkproxy import LinkProxy

WORKERS = ("pi1", "pi2", "pi3")
# What each kind of job may end as. A job whose worker was away at submit is offline; one
# whose worker died with it is lost; a kill that could not be delivered (the master was
# down) lets a long job finish.
ALLOWED = {
    "short": {"succeeded", "lost", "offline"},
    "long": {"succeeded", "lost", "offline"},
    "kill": {"killed", "succeeded", "lost", "offline"},
    "timeout": {"timed_out", "lost", "offline"},
}


class Submission:
    def __init__(self, pool_id, kind, text):
        self.pool_id, self.kind, self.text = pool_id, kind, text
        self.kill_at = None


class Soak:
    def __init__(self, cluster, master_disk, worker_disk, seed, seconds, ran_dir):
        self.cluster, self.master_disk, self.worker_disk = cluster, master_disk, worker_disk
        self.seed, self.seconds, self.ran_dir = seed, seconds, ran_dir
        self.random = random.Random(seed)
        self.accepted = {}          # pool id -> Submission
        self.refused = 0            # submissions answered with an error or not answered (master down)
        self.faults = []            # (time, what)
        self.proxies = {}
        self.stop = threading.Event()
        self.master_state = os.path.join(master_disk.path, "master-state")

    # -- the cluster ---------------------------------------------------------------------
    def start(self):
        self.cluster.start_master(state_dir=self.master_state, lost_after="20s")
        for name in WORKERS:
            self.proxies[name] = LinkProxy(self.cluster.worker_port)
            state = os.path.join(self.worker_disk.path, name) if name == "pi3" else None
            settings = {"master_port": self.proxies[name].port, "reconnect_max": "0.5s"}
            if state:
                settings["state_dir"] = state
            self.cluster.start_worker(name, **settings)

    def close(self):
        for proxy in self.proxies.values():
            proxy.close()

    # -- the load ------------------------------------------------------------------------
    def _submit_loop(self):
        rng = random.Random(self.seed + 1)
        n = 0
        while not self.stop.is_set():
            n += 1
            kind = rng.choices(("short", "long", "kill", "timeout"), (70, 10, 10, 10))[0]
            text = "seed%d-%d" % (self.seed, n)
            # Each job notes that it ran (to catch a job run twice), then prints its text.
            mark = 'echo "$PCCI_JOB_ID" >> %s/ran; ' % self.ran_dir
            body = {"cmd": {"short": mark + "echo %s" % text,
                            "long": mark + "sleep %.1f; echo %s" % (rng.uniform(1, 3), text),
                            "kill": mark + "sleep 6; echo %s" % text,
                            "timeout": mark + "sleep 6; echo %s" % text}[kind],
                    "workers": list(WORKERS)}
            if kind == "timeout":
                body["timeout"] = 1
            try:
                status, answer = self.cluster.api("POST", "/job", body, timeout=15)
            except OSError:
                status, answer = None, None
            if status == 202:
                submission = Submission(answer["id"], kind, text + "\n")
                if kind == "kill":
                    submission.kill_at = time.monotonic() + rng.uniform(0.3, 1.5)
                self.accepted[answer["id"]] = submission
            else:
                self.refused += 1
            self._send_kills()
            time.sleep(rng.uniform(0.05, 0.25))

    def _send_kills(self):
        now = time.monotonic()
        for submission in self.accepted.values():
            if submission.kill_at is not None and submission.kill_at <= now:
                submission.kill_at = None
                try:
                    self.cluster.api("PUT", "/kill/%s" % submission.pool_id, timeout=15)
                except OSError:
                    pass

    # -- the faults ----------------------------------------------------------------------
    def _fault(self):
        rng = self.random
        name = rng.choice(WORKERS)
        worker = self.cluster.workers[name]
        proxy = self.proxies[name]
        what = rng.choice(("master kill", "master power cut", "worker kill", "worker power cut", "freeze",
                           "link cut", "slow link", "lossy link"))
        if what == "master kill":
            self.cluster.master.kill()
            time.sleep(rng.uniform(0, 1))
            self.cluster.start_master(state_dir=self.master_state, lost_after="20s")
        elif what == "master power cut":
            self.cluster.master.kill()
            self.master_disk.cut()
            self.cluster.start_master(state_dir=self.master_state, lost_after="20s")
        elif what == "worker kill":
            worker.kill()
            time.sleep(rng.uniform(0, 1.5))
            worker.start()
        elif what == "worker power cut":
            name, worker = "pi3", self.cluster.workers["pi3"]
            worker.kill()
            self.worker_disk.cut()
            worker.start()
        elif what == "freeze":
            worker.signal(signal.SIGSTOP)
            time.sleep(rng.uniform(0.5, 4))
            worker.signal(signal.SIGCONT)
        elif what == "link cut":
            proxy.cut()
            time.sleep(rng.uniform(0.5, 4))
            proxy.restore()
        elif what == "slow link":
            proxy.shape(delay=rng.uniform(0.02, 0.1), jitter=0.05)
            time.sleep(rng.uniform(1, 4))
            proxy.shape()
        else:
            proxy.shape(stall_chance=rng.uniform(0.05, 0.3))
            time.sleep(rng.uniform(1, 4))
            proxy.shape()
        self.faults.append((what, name if what not in ("master kill", "master power cut") else "master"))

    def run(self):
        self.start()
        submitter = threading.Thread(target=self._submit_loop, daemon=True)
        submitter.start()
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            time.sleep(self.random.uniform(0.5, 2))
            self._fault()
        self.stop.set()
        submitter.join(60)
        for proxy in self.proxies.values():
            proxy.restore()
            proxy.shape()
        for worker in self.cluster.workers.values():
            worker.signal(signal.SIGCONT)
        started = time.monotonic()
        self.cluster.wait_online(*WORKERS, timeout=60)
        for submission in self.accepted.values():
            if submission.kill_at is not None:      # a kill still due when the load stopped
                self.cluster.api("PUT", "/kill/%s" % submission.pool_id, timeout=30)
        wait_until(lambda: self.cluster.api("GET", "/pools?status=running&limit=1")[1]["pools"] == [],
                   timeout=120, interval=0.5, what="every pool ended after the faults stopped")
        self.settle_seconds = time.monotonic() - started

    # -- the checker -----------------------------------------------------------------------
    def check(self):
        """A list of violations (empty when all invariants hold) and the counts for the summary."""
        violations = []
        acknowledged = set()
        for worker in self.cluster.workers.values():
            acknowledged |= set(re.findall(r"result for (\S+) acknowledged", worker.log()))
        with open(os.path.join(self.ran_dir, "ran")) as handle:
            ran = [line.strip() for line in handle if line.strip()]
        twice = sorted({job for job in ran if ran.count(job) > 1})
        violations += ["job %s ran twice" % job for job in twice]
        lost_results = 0
        jobs = 0
        states = {}
        for pool_id, submission in self.accepted.items():
            status, pool = self.cluster.api("GET", "/pool/%s" % pool_id, timeout=30)
            if status != 200:
                violations.append("accepted pool %s is not in the store (%s)" % (pool_id, status))
                continue
            if pool["status"] != "done":
                violations.append("pool %s never ended" % pool_id)
            for name, job in pool["jobs"].items():
                jobs += 1
                job_id = "%s/%s" % (pool_id, name)
                states[job["state"]] = states.get(job["state"], 0) + 1
                if job["state"] not in ALLOWED[submission.kind]:
                    violations.append("%s job %s ended %s: %r" % (submission.kind, job_id, job["state"],
                                                                 job["stderr"][:200]))
                if job["state"] == "succeeded" and job["stdout"] != submission.text:
                    violations.append("job %s succeeded with %r, not %r" % (job_id, job["stdout"], submission.text))
                if job_id in acknowledged and job["state"] in ("lost", "offline", "running"):
                    lost_results += 1
                    violations.append("job %s: its result was acknowledged, yet the store says %s"
                                      % (job_id, job["state"]))
        return violations, {"pools": len(self.accepted), "jobs": jobs, "faults": len(self.faults),
                            "lost": lost_results, "duplicated": len(twice), "states": states}

    def summary(self, counts):
        return ("%d pools, %d jobs, %d faults injected, %d lost, %d duplicated (seed %d); "
                "settled %.1f s after the faults stopped; %d submissions refused while the master was away; "
                "final states %s" % (counts["pools"], counts["jobs"], counts["faults"], counts["lost"],
                                     counts["duplicated"], self.seed, self.settle_seconds, self.refused,
                                     counts["states"]))
