"""Failures a real cluster meets, with real master and worker processes on loopback."""

import os
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys

import pytest

from conftest import (OTHER_KEY, REPO, cgroup_base, dial_worker_port, kill_pids, pids_alive, remove_cgroup_tree,
                      self_signed, wait_until)
from linkproxy import LinkProxy
from pcci.worker.spool import unacknowledged


def job_of(cluster, pool_id, worker):
    return cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"][worker]


def spooled(cluster, name):
    return unacknowledged(os.path.join(cluster.workers[name].settings["state_dir"], "results"))


def closed_by_peer(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return True


def test_pool_on_two_workers_collects_each_workers_output(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    pool = cluster.run("echo I am $PCCI_NODE", ["pi1", "pi2"], env={"PCCI_NODE": "here"})
    assert {name: job["stdout"] for name, job in pool["jobs"].items()} == {"pi1": "I am here\n", "pi2": "I am here\n"}


def test_timeout_ends_the_job_as_timed_out(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    pool = cluster.run("sleep 30", ["pi1"], timeout=0.5)
    job = pool["jobs"]["pi1"]
    assert job["state"] == "timed_out" and job["signal"] == "SIGTERM"


def test_output_over_the_cap_is_truncated_and_flagged(cluster):
    cluster.start_master()
    cluster.start_worker("pi1", output_cap_bytes=1000)
    job = cluster.run("yes | head -c 50000; echo fine >&2", ["pi1"])["jobs"]["pi1"]
    assert len(job["stdout"]) == 1000 and job["stdoutTruncated"] and not job["stderrTruncated"]
    assert job["stderr"] == "fine\n" and job["state"] == "succeeded"


def test_kill_reaches_grandchildren_through_the_api(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    pids_file = tmp_path / "pids"
    status, submitted = cluster.api("POST", "/job", {
        "cmd": "sh -c 'sleep 60 & echo $! >> %s; wait' & echo $! >> %s; sleep 60" % (pids_file, pids_file),
        "workers": ["pi1"]})
    pids = wait_until(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2
                      and [int(p) for p in pids_file.read_text().split()], what="grandchildren")
    try:
        status, killed = cluster.api("PUT", "/kill/%s" % submitted["id"], {"workers": ["pi1"]})
        assert killed["workers"] == {"pi1": "signalled"}
        pool = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]
        assert pool["jobs"]["pi1"]["state"] == "killed"
        wait_until(lambda: not pids_alive(pids), timeout=5, what="grandchildren gone")
    finally:
        kill_pids(pids)


def test_master_sigkilled_while_jobs_run_shows_them_finished_after_restart(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    earlier = cluster.run("echo history", ["pi1"])
    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 2; echo survived", "workers": ["pi1", "pi2"]})
    assert status == 202
    cluster.wait_running(submitted["id"], "pi1", "pi2")
    cluster.master.kill()
    wait_until(lambda: len(spooled(cluster, "pi1")) == 1 and len(spooled(cluster, "pi2")) == 1,
               timeout=15, what="results kept on the workers' disks")
    cluster.start_master()
    pool = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]
    assert pool["status"] == "done"
    assert {n: (j["state"], j["stdout"]) for n, j in pool["jobs"].items()} == \
        {"pi1": ("succeeded", "survived\n"), "pi2": ("succeeded", "survived\n")}
    assert cluster.api("GET", "/pool/%s" % earlier["id"])[1]["jobs"]["pi1"]["stdout"] == "history\n"
    wait_until(lambda: not spooled(cluster, "pi1") and not spooled(cluster, "pi2"), what="acknowledged")


def test_link_cut_while_a_job_finishes_delivers_the_result_once_after_reconnect(cluster):
    cluster.start_master()
    proxy = LinkProxy(cluster.worker_port)
    try:
        cluster.start_worker("pi1", master_port=proxy.port)
        status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 2.5; echo made it", "workers": ["pi1"]})
        cluster.wait_running(submitted["id"], "pi1")
        proxy.cut()
        wait_until(lambda: len(spooled(cluster, "pi1")) == 1, timeout=10, what="result spooled while cut")
        assert job_of(cluster, submitted["id"], "pi1")["state"] == "running"
        proxy.restore()
        pool = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]
        job = pool["jobs"]["pi1"]
        assert (job["state"], job["stdout"]) == ("succeeded", "made it\n")
        wait_until(lambda: not spooled(cluster, "pi1"), what="spool emptied by the ack")
        # Cut and restore again: nothing is re-delivered, nothing changes.
        proxy.cut()
        proxy.restore()
        cluster.wait_online("pi1")
        assert job_of(cluster, submitted["id"], "pi1") == job
        assert cluster.master.log().count("duplicate result") == 0
        cluster.master.stop()           # it holds its database exclusively while it runs
        db = sqlite3.connect(os.path.join(cluster.master.settings["state_dir"], "pcci.sqlite3"))
        rows = db.execute("SELECT COUNT(*) FROM jobs WHERE pool_id = ?", (submitted["id"],)).fetchone()[0]
        db.close()
        assert rows == 1
    finally:
        proxy.close()


def test_worker_with_the_wrong_key_cannot_register(cluster):
    cluster.start_master()
    cluster.start_worker("intruder", wait=False, cluster_key=OTHER_KEY)
    wait_until(lambda: "bad_key" in cluster.master.log(), what="master refusal logged")
    wait_until(lambda: "cannot register with master" in cluster.workers["intruder"].log(), what="worker told why")
    workers = cluster.api("GET", "/workers")[1]["workers"]
    assert [w for w in workers if w["name"] == "intruder"] == []


def test_worker_refuses_a_master_that_does_not_hold_the_key(cluster, tmp_path):
    """A fake master (a TLS socket of this test's, with a certificate of its own) sends a bogus
    proof and then a run order."""
    cert, key = self_signed(str(tmp_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(15)
    marker = tmp_path / "ran"
    try:
        cluster.worker_port = listener.getsockname()[1]
        cluster.start_worker("pi1", wait=False)
        conn, _ = listener.accept()
        conn = context.wrap_socket(conn, server_side=True)
        conn.settimeout(5)
        conn.recv(65536)  # the hello
        for message in ({"type": "challenge", "nonce": "00" * 32},
                        {"type": "welcome", "proof": "ff" * 32}, {"type": "sync"},
                        {"type": "run", "job": "x/pi1", "cmd": "touch %s" % marker}):
            payload = __import__("json").dumps(message).encode()
            try:
                conn.sendall(struct.pack(">I", len(payload)) + payload)
            except OSError:
                break
        wait_until(lambda: "did not prove it holds the cluster key" in cluster.workers["pi1"].log(),
                   what="worker refusal logged")
        assert not marker.exists()
        conn.close()
    finally:
        listener.close()


def test_garbage_on_the_worker_port_costs_only_that_connection(cluster):
    cluster.start_master(handshake_timeout="1s")
    cluster.start_worker("pi1")
    junks = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", struct.pack(">I", 2 ** 31) + b"x",
             struct.pack(">I", 5) + b"nope!", struct.pack(">I", 15) + b'{"type":"bogus"}'[:15])
    for junk in junks:
        # Garbage instead of TLS, and garbage inside a TLS session.
        with socket.create_connection(("127.0.0.1", cluster.worker_port), timeout=5) as sock:
            sock.sendall(junk)
            assert closed_by_peer(sock)
        with dial_worker_port(cluster.worker_port, timeout=5)[0] as sock:
            sock.sendall(junk)
            assert closed_by_peer(sock)
    for silent in (socket.create_connection(("127.0.0.1", cluster.worker_port), timeout=5),
                   dial_worker_port(cluster.worker_port, timeout=5)[0]):
        assert closed_by_peer(silent)  # by the master, after handshake_timeout
        silent.close()
    log = cluster.master.log()
    assert log.count("sent garbage") >= 3
    assert log.count("TLS handshake failed") >= 4
    assert cluster.run("echo alive", ["pi1"])["jobs"]["pi1"]["stdout"] == "alive\n"


def test_two_live_workers_claiming_one_name_the_newcomer_is_refused(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi1-twin", wait=False, node_name="pi1")
    twin = cluster.workers["pi1-twin"]
    wait_until(lambda: "node_name_in_use" in twin.log(), what="newcomer told")
    assert "node_name_in_use" in cluster.master.log()
    assert cluster.run("echo original", ["pi1"])["jobs"]["pi1"]["stdout"] == "original\n"


def start_sleeper(cluster, tmp_path):
    """Submit a long job on pi1; return the submit answer and the job's pid (it outlives a killed worker)."""
    pid_file = tmp_path / "pid"
    status, submitted = cluster.api("POST", "/job", {"cmd": "echo $$ > %s; exec sleep 60" % pid_file,
                                                     "workers": ["pi1"]})
    pid = wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="job started")
    return submitted, int(pid)


def test_a_worker_killed_and_restarted_kills_its_orphaned_job_which_is_marked_lost(cluster, tmp_path):
    cluster.start_master()
    worker = cluster.start_worker("pi1")
    submitted, pid = start_sleeper(cluster, tmp_path)
    try:
        worker.kill()                     # SIGKILL: the job, in its own session, runs on
        assert pids_alive([pid]) == [pid]
        worker.start()
        cluster.wait_online("pi1")
        pool = cluster.api("GET", "/pool/%s?wait=10" % submitted["id"])[1]
        assert pool["jobs"]["pi1"]["state"] == "lost" and pool["status"] == "done"
        wait_until(lambda: not pids_alive([pid]), timeout=5, what="the orphaned job killed")
        assert "left running by a previous worker" in worker.log()
    finally:
        kill_pids([pid])


@pytest.fixture(params=["process_groups", "cgroups"])
def job_isolation(request, cluster):
    """How pi1 runs its jobs: without a cgroup of its own (the fallback), or alone in a
    cgroup as systemd's Delegate=yes would give it (the test makes that cgroup)."""
    if request.param == "process_groups":
        yield {"job_cgroups": "off"}, []
        return
    base = cgroup_base()
    if base is None:
        pytest.skip("no cgroup v2 hierarchy this test may write to")
    home = os.path.join(base, "worker")
    os.makedirs(home)
    yield {"job_cgroups": "on"}, ["sh", "-c", 'echo $$ > %s/cgroup.procs && exec "$@"' % home, "sh"]
    cluster.stop()
    remove_cgroup_tree(home)
    remove_cgroup_tree(base)


def test_a_restarted_worker_kills_every_process_its_crashed_predecessor_left(cluster, tmp_path, job_isolation):
    """Observed before: leftovers that were not session leaders survived a worker restart."""
    settings, prefix = job_isolation
    cluster.start_master()
    worker = cluster.start_worker("pi1", wait=False, **settings)
    worker.stop()
    worker.prefix = prefix
    worker.start()
    cluster.wait_online("pi1")
    pids = tmp_path / "pids"
    cmd = ("sleep 1007 & echo $! >> {0}; setsid sh -c 'echo $$ >> {0}; exec sleep 1008' >/dev/null 2>&1 & "
           "echo $$ >> {0}; sleep 1009".format(pids))
    status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": ["pi1"]})
    started = wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 3
                         and [int(p) for p in pids.read_text().split()], what="job and daemons started")
    try:
        worker.kill()
        assert pids_alive(started) == started
        worker.start()
        cluster.wait_online("pi1")
        wait_until(lambda: not pids_alive(started), timeout=10, what="every leftover killed")
        pool = cluster.api("GET", "/pool/%s?wait=10" % submitted["id"])[1]
        assert pool["jobs"]["pi1"]["state"] == "lost"
    finally:
        kill_pids(started)


def test_worker_gone_for_good_has_its_jobs_marked_lost_after_the_grace_period(cluster, tmp_path):
    cluster.start_master(lost_after="1s", heartbeat_timeout="1s")
    worker = cluster.start_worker("pi1")
    submitted, pid = start_sleeper(cluster, tmp_path)
    try:
        worker.kill()
        pool = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]
        assert pool["jobs"]["pi1"]["state"] == "lost"
        assert "lost" in cluster.master.log()
    finally:
        kill_pids([pid])


def test_stopping_a_worker_kills_its_jobs_and_the_master_shows_them_killed(cluster):
    cluster.start_master()
    worker = cluster.start_worker("pi1")
    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 60", "workers": ["pi1"]})
    wait_until(lambda: cluster.api("GET", "/workers")[1]["workers"][0]["runningJobs"], what="job running")
    worker.signal(signal.SIGTERM)
    pool = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]
    assert pool["jobs"]["pi1"]["state"] == "killed"
    worker.process.wait(15)
    assert worker.process.returncode == 0


def test_history_survives_a_clean_master_restart(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    pool = cluster.run("echo keep me", ["pi1"])
    cluster.master.stop()
    cluster.start_master()
    again = cluster.api("GET", "/pool/%s" % pool["id"])[1]
    assert again == pool
    cluster.wait_online("pi1")


def test_a_frozen_worker_misses_heartbeats_is_shown_offline_and_comes_back(cluster):
    cluster.start_master(heartbeat_timeout="1s")
    worker = cluster.start_worker("pi1")
    worker.signal(signal.SIGSTOP)
    try:
        wait_until(lambda: not cluster.api("GET", "/workers")[1]["workers"][0]["online"], what="shown offline")
    finally:
        worker.signal(signal.SIGCONT)
    cluster.wait_online("pi1")
    assert cluster.run("echo thawed", ["pi1"])["jobs"]["pi1"]["stdout"] == "thawed\n"


def test_ended_pools_are_purged_after_the_retention_period(cluster):
    cluster.start_master(pool_retention="1s")
    cluster.start_worker("pi1")
    pool = cluster.run("true", ["pi1"])
    wait_until(lambda: cluster.api("GET", "/pool/%s" % pool["id"])[0] == 404, timeout=10, what="purged")
    status, body = cluster.api("GET", "/pool/%s" % pool["id"])
    assert body["error"]["code"] == "unknown_pool"
    assert "purged 1 pool" in cluster.master.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="a UTS namespace for the worker's own hostname needs root")
def test_worker_registers_under_its_hostname_by_default(cluster):
    """The worker runs in its own UTS namespace (unshare), so it has a hostname of its own."""
    cluster.start_master()
    worker = cluster.start_worker("unnamed", wait=False, node_name=None)   # writes the config, starts
    worker.stop()
    log = open(worker.log_path, "ab")
    worker.process = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", 'hostname pi-in-a-namespace && exec "$0" -m pcci worker --config "$1"',
         sys.executable, worker.config_path], stdout=log, stderr=log, env=dict(os.environ, PYTHONPATH=REPO))
    log.close()
    cluster.wait_online("pi-in-a-namespace")
    job = cluster.run("hostname", ["pi-in-a-namespace"])["jobs"]["pi-in-a-namespace"]
    assert job["stdout"] == "pi-in-a-namespace\n"


def test_a_newcomer_takes_the_name_of_a_connection_that_no_longer_answers(cluster):
    cluster.start_master(heartbeat_timeout="60s")        # the master would not notice on its own
    old = cluster.start_worker("pi1")
    old.signal(signal.SIGSTOP)                             # alive to TCP, deaf to pings
    try:
        cluster.start_worker("pi1-new", node_name="pi1", wait=False)
        wait_until(lambda: "did not answer; replacing it" in cluster.master.log(), what="old session replaced")
        cluster.wait_online("pi1")
        job = cluster.run("echo $PCCI_WORKER", ["pi1"])["jobs"]["pi1"]
        assert job["stdout"].strip().endswith("worker-pi1-new")
    finally:
        old.signal(signal.SIGCONT)
