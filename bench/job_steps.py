"""Where one job's time goes: timestamps at each step of `true` on one worker, on loopback.

    python3 bench/job_steps.py [ROUNDS]      (default 300)

A real master and worker (bench/step_probe.py wraps a few of their methods to write a
CLOCK_MONOTONIC timestamp per step); the client submits one job at a time as
bench/latency.py does (POST /job, GET /pool/<id>?wait=) and marks its own steps. Prints,
per step, the median time since the POST left and the median gap from the step before.
"""

import http.client
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from conftest import Cluster, Service, wait_until  # noqa: E402

# What each step is; a step that comes twice in a job (a commit, a frame) is numbered.
STEPS = {
    "c.post_sent": "client: POST /job leaves",
    "m.submit_in": "master: submit() starts (request read and parsed)",
    "m.commit_start": "master: pool commit starts (store thread)",
    "m.commit_end": "master: pool commit returns (fsync'd)",
    "m.frame_sent": "master: run frame handed to the link",
    "m.submit_answered": "master: submit() returns",
    "w.run_in": "worker: run frame handled",
    "w.spawn_start": "worker: spawn starts",
    "w.spawn_end": "worker: Popen returned",
    "c.post_answered": "client: 202 read",
    "w.exit_seen": "worker: exit seen (pidfd)",
    "w.deliver": "worker: result built, to the outbox",
    "w.spool_start": "worker: spool write starts",
    "w.spool_synced": "worker: spool file + directory fsync'd",
    "w.result_queued": "worker: result frame handed to the link",
    "m.result_in": "master: result handled",
    "m.commit_start#2": "master: result commit starts",
    "m.commit_end#2": "master: result commit returns (fsync'd)",
    "m.frame_sent#2": "master: ack handed to the link",
    "m.pool_ended": "master: pool ended, waiters woken",
    "c.get_answered": "client: GET ?wait answer read",
    "w.ack_in": "worker: ack handled",
}


def start_probed(cluster, steps_file):
    """The cluster's master and one worker, run through bench/step_probe.py."""
    env = {"PCCI_STEPS_FILE": steps_file}
    master = Service("master", os.path.join(cluster.base, "master"), cluster.master_settings(log_level="warning"))
    master.module, master.python_path, master.env = "step_probe", [HERE], env
    cluster.master = master.start()
    wait_until(lambda: master.process.poll() is not None or cluster._healthy(), what="master /health")
    worker = cluster.start_worker("pi1", wait=False, log_level="warning")
    worker.stop()
    worker.module, worker.python_path, worker.env = "step_probe", [HERE], env
    worker.start()
    cluster.wait_online("pi1")


def rounds_of_steps(cluster, rounds, steps_file):
    marks = open(steps_file, "ab", buffering=0)

    def mark(step):
        marks.write(b"%s %d\n" % (step.encode(), time.monotonic_ns()))
    connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port)
    body = json.dumps({"cmd": "true", "workers": ["pi1"]})
    for n in range(rounds + 20):
        time.sleep(0.02)        # the ack and the rest of the last job settle first
        if n == 20:
            mark("c.measured_from")
        mark("c.post_sent")
        connection.request("POST", "/job", body)
        pool_id = json.loads(connection.getresponse().read())["id"]
        mark("c.post_answered")
        connection.request("GET", "/pool/%s?wait=10" % pool_id)
        assert json.loads(connection.getresponse().read())["status"] == "done"
        mark("c.get_answered")
    time.sleep(0.1)
    connection.close()


def per_round(steps_file):
    """Each measured round's steps: a list of (step, ns) in time order, from its c.post_sent."""
    with open(steps_file) as handle:
        lines = sorted((int(ns), step) for step, ns in (line.split() for line in handle))
    start = next(ns for ns, step in lines if step == "c.measured_from")
    rounds, current = [], None
    for ns, step in lines:
        if ns < start:
            continue
        if step == "c.post_sent":
            current = []
            rounds.append(current)
        if current is not None and step != "c.measured_from":
            current.append((step, ns))
    return rounds


def numbered(round_steps):
    """{step: ns}, the second of a repeated step named STEP#2."""
    seen, result = {}, {}
    for step, ns in round_steps:
        seen[step] = seen.get(step, 0) + 1
        result[step if seen[step] == 1 else "%s#%d" % (step, seen[step])] = ns
    return result


def table(rounds):
    """(step, what, median ms since the POST, gap from the step before), by median time."""
    complete = [numbered(steps) for steps in rounds]
    complete = [steps for steps in complete if set(steps) == set(STEPS)]
    if not complete:
        raise SystemExit("no round had every step")
    medians = {step: statistics.median((steps[step] - steps["c.post_sent"]) / 1e6 for steps in complete)
               for step in STEPS}
    result, before = [], 0.0
    for step in sorted(STEPS, key=medians.get):
        result.append((step, STEPS[step], medians[step], medians[step] - before))
        before = medians[step]
    return result, len(complete)


def main(rounds):
    with tempfile.TemporaryDirectory() as base:
        steps_file = os.path.join(base, "steps")
        cluster = Cluster(base)
        try:
            start_probed(cluster, steps_file)
            rounds_of_steps(cluster, rounds, steps_file)
        finally:
            cluster.stop()
        measured = per_round(steps_file)
        rows, kept = table(measured)
    print("%d rounds, %d with every step (medians, ms; steps of other processes overlap)" % (len(measured), kept))
    print("%-18s %9s %8s  %s" % ("step", "since POST", "gap", "what"))
    for step, what, since_post, gap in rows:
        print("%-18s %9.3f %8.3f  %s" % (step, since_post, gap, what))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
