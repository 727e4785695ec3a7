"""A chaos soak with a history checker, across network namespaces.

A steady stream of pools (short jobs, long jobs, kills, timeouts) runs on three
workers while a seeded scheduler injects faults: the master SIGKILLed and restarted,
the master's power cut (its state on tests/powercut.py), a worker SIGKILLed and
restarted, a worker's power cut, a worker frozen (SIGSTOP, SIGCONT), its veth link
taken down and up, and its link slowed or made lossy (this kernel has no netem: a
tests/linkproxy.py relay in the master's namespace delays and stalls). Every
submission, answer and final state is recorded; `check` then verifies the invariants
and `summary` says what happened.

Layout (tests/nspawn.py's test bed, no containers): the master in namespace "m"
(10.213.7.1), workers pi1-pi3 in their own (10.213.7.2-4), each dialing the master
through its own relay; the API is called with curl from the controller namespace,
which has no default route. Bounded: the fault window lasts `seconds`, every wait has
a limit, and everything started is stopped by `close`.
"""

import collections
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import nspawn
from conftest import KEY, REPO, Service, wait_until
from control import command as relay_command

WORKERS = ("pi1", "pi2", "pi3")
MASTER_ADDRESS = "10.213.7.1"
TOKEN = "chaos-token-" + "c" * 16
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
    def __init__(self, directory, master_disk, worker_disk, seed, seconds):
        self.directory, self.master_disk, self.worker_disk = directory, master_disk, worker_disk
        self.seed, self.seconds = seed, seconds
        self.random = random.Random(seed)
        self.accepted = {}          # pool id -> Submission
        self.refused = 0            # submissions answered with an error or not answered (master down)
        self.faults = []            # (what, whom)
        self.stop = threading.Event()
        self.bed = nspawn.Testbed(directory)
        self.master_ns = self.bed._attach("m", 1)
        self.worker_ns = {name: self.bed._attach(name, n + 2) for n, name in enumerate(WORKERS)}
        self.relays, self.workers, self.master = [], {}, None
        self.master_state = os.path.join(master_disk.path, "master-state")

    # -- the cluster ---------------------------------------------------------------------
    def _service(self, kind, name, netns, settings):
        service = Service(kind, os.path.join(self.directory, name), settings)
        service.prefix = ["ip", "netns", "exec", netns]
        return service

    def start_master(self):
        self.master = self._service("master", "master", self.master_ns, {
            "cluster_key": KEY, "state_dir": self.master_state, "api_host": "0.0.0.0", "api_tokens": [TOKEN],
            "worker_port": 7070, "heartbeat_timeout": "3s", "lost_after": "20s", "log_level": "debug"}).start()
        wait_until(lambda: self.master.process.poll() is not None or self.api("GET", "/health")[0] == 200,
                   timeout=30, what="master /health")
        assert self.master.process.poll() is None, self.master.log()

    def start(self):
        self.start_master()
        for n, name in enumerate(WORKERS):
            control = os.path.join(self.directory, "relay-%s.sock" % name)
            relay = subprocess_in(self.master_ns, [sys.executable, os.path.join(REPO, "tests", "linkproxy.py"),
                                                   MASTER_ADDRESS, str(7101 + n), "127.0.0.1", "7070", control])
            self.relays.append((relay, control))
            wait_until(lambda: os.path.exists(control), what="relay %s up" % name)
            state = os.path.join(self.worker_disk.path, name) if name == "pi3" else \
                os.path.join(self.directory, "state-%s" % name)
            self.workers[name] = self._service("worker", "worker-%s" % name, self.worker_ns[name], {
                "cluster_key": KEY, "state_dir": state, "master_host": MASTER_ADDRESS, "master_port": 7101 + n,
                "node_name": name, "heartbeat_interval": "0.5s", "link_timeout": "3s", "reconnect_min": "0.1s",
                "reconnect_max": "0.5s", "kill_grace": "1s", "log_level": "debug"}).start()
        self.wait_online()

    def wait_online(self, timeout=60):
        def online():
            status, body = self.api("GET", "/workers")
            return status == 200 and {w["name"] for w in body["workers"] if w["online"]} >= set(WORKERS)
        wait_until(online, timeout=timeout, interval=0.3, what="every worker online")

    def api(self, method, path, body=None):
        return self.bed.api(MASTER_ADDRESS, method, path, TOKEN, body,
                            cacert=os.path.join(self.master_state, "tls", "api.crt"))

    def relay(self, name, text):
        relay_command(self.relays[WORKERS.index(name)][1], text)

    def veth(self, name, state):
        port = "v%s%d" % (self.bed.prefix[-6:], WORKERS.index(name) + 2)
        nspawn.run("ip", "-n", self.bed.switch, "link", "set", port, state)

    def close(self):
        for service in list(self.workers.values()) + [self.master]:
            if service is not None:
                service.signal(signal.SIGCONT)
                service.stop()
        for relay, _ in self.relays:
            relay.kill()
            relay.wait(10)
        self.bed.close()

    # -- the load ------------------------------------------------------------------------
    def _submit_loop(self):
        rng = random.Random(self.seed + 1)
        n = 0
        while not self.stop.is_set():
            n += 1
            kind = rng.choices(("short", "long", "kill", "timeout"), (70, 10, 10, 10))[0]
            text = "seed%d-%d" % (self.seed, n)
            # Each job notes that it ran (to catch a job run twice), then prints its text.
            mark = 'echo "$PCCI_JOB_ID" >> %s/ran; ' % self.directory
            body = {"cmd": {"short": mark + "echo %s" % text,
                            "long": mark + "sleep %.1f; echo %s" % (rng.uniform(1, 3), text),
                            "kill": mark + "sleep 6; echo %s" % text,
                            "timeout": mark + "sleep 6; echo %s" % text}[kind],
                    "workers": list(WORKERS)}
            if kind == "timeout":
                body["timeout"] = 1
            status, answer = self.api("POST", "/job", body)
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
                self.api("PUT", "/kill/%s" % submission.pool_id)

    # -- the faults ----------------------------------------------------------------------
    def _fault(self):
        rng = self.random
        name = rng.choice(WORKERS)
        worker = self.workers[name]
        what = rng.choice(("master kill", "master power cut", "worker kill", "worker power cut", "freeze",
                           "veth down", "relay cut", "slow link", "lossy link"))
        if what in ("master kill", "master power cut"):
            name = "master"
            self.master.kill()
            if what == "master power cut":
                self.master_disk.cut()
            else:
                time.sleep(rng.uniform(0, 1))
            self.start_master()
        elif what == "worker kill":
            worker.kill()
            time.sleep(rng.uniform(0, 1.5))
            worker.start()
        elif what == "worker power cut":
            name, worker = "pi3", self.workers["pi3"]
            worker.kill()
            self.worker_disk.cut()
            worker.start()
        elif what == "freeze":
            worker.signal(signal.SIGSTOP)
            time.sleep(rng.uniform(0.5, 4))
            worker.signal(signal.SIGCONT)
        elif what == "veth down":
            self.veth(name, "down")
            time.sleep(rng.uniform(0.5, 5))
            self.veth(name, "up")
        elif what == "relay cut":
            self.relay(name, "cut")
            time.sleep(rng.uniform(0.5, 3))
            self.relay(name, "restore")
        elif what == "slow link":
            self.relay(name, "shape %.3f 0.05 0" % rng.uniform(0.02, 0.1))
            time.sleep(rng.uniform(1, 4))
            self.relay(name, "shape 0 0 0")
        else:
            self.relay(name, "shape 0 0 %.2f" % rng.uniform(0.05, 0.3))
            time.sleep(rng.uniform(1, 4))
            self.relay(name, "shape 0 0 0")
        self.faults.append((what, name))

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
        started = time.monotonic()
        self.wait_online()
        for submission in self.accepted.values():
            if submission.kill_at is not None:      # a kill still due when the load stopped
                self.api("PUT", "/kill/%s" % submission.pool_id)

        def settled():
            status, page = self.api("GET", "/pools?status=running&limit=1")
            return status == 200 and page["pools"] == []
        wait_until(settled, timeout=120, interval=0.5, what="every pool ended after the faults stopped")
        self.settle_seconds = time.monotonic() - started

    # -- the checker -----------------------------------------------------------------------
    def check(self):
        """A list of violations (empty when all invariants hold) and the counts for the summary."""
        violations = []
        acknowledged = set()
        for worker in self.workers.values():
            acknowledged |= set(re.findall(r"result for (\S+) acknowledged", worker.log()))
        with open(os.path.join(self.directory, "ran")) as handle:
            ran = [line.strip() for line in handle if line.strip()]
        twice = sorted({job for job in ran if ran.count(job) > 1})
        violations += ["job %s ran twice" % job for job in twice]
        lost_results = 0
        jobs = 0
        states = {}
        for pool_id, submission in self.accepted.items():
            status, pool = self.api("GET", "/pool/%s" % pool_id)
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
                "final states %s; faults %s" % (counts["pools"], counts["jobs"], counts["faults"], counts["lost"],
                                                counts["duplicated"], self.seed, self.settle_seconds, self.refused,
                                                counts["states"], dict(collections.Counter(w for w, _ in self.faults))))


def subprocess_in(netns, argv):
    """A helper process inside a network namespace (stopped by Soak.close)."""
    return subprocess.Popen(["ip", "netns", "exec", netns] + argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
