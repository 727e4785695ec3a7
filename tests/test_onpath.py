"""A real attacker on the path between a worker and its master (tests/onpath.py), in a
network namespace of its own: the worker dials the attacker's address, as after ARP or DNS
spoofing, and the attacker relays to the master. With the link's TLS (the default) he
reads nothing, his forged frames run nothing, and his own certificate gets him nowhere.
The plaintext runs are the control: the same attacker reads and injects at will, which
shows that the recorder and the injector work."""

import os
import subprocess
import sys

import pytest

from conftest import KEY, REPO, self_signed, start_in_namespace, wait_until

MASTER, WORKER, ATTACKER = "10.213.7.1", "10.213.7.2", "10.213.7.3"
TOKEN = "onpath-token-" + "o" * 12
SECRET_CMD = "echo the-secret-command-7c1f; echo the-output-$((6*7))-7c1f"
SECRET_OUTPUT = "the-output-42-7c1f"


class Lab:
    def __init__(self, bed, directory, plaintext=False):
        self.bed, self.directory, self.plaintext = bed, directory, plaintext
        self.master_ns = bed._attach("m", 1)
        self.worker_ns = bed._attach("w", 2)
        self.attacker_ns = bed._attach("a", 3)
        self.record = os.path.join(directory, "recorded.bin")
        self.mark = os.path.join(directory, "forged-ran")
        self.attacker = None
        self.master = start_in_namespace(bed, self.master_ns, "master", os.path.join(directory, "master"), {
            "cluster_key": KEY, "state_dir": os.path.join(directory, "master-state"), "api_host": "0.0.0.0",
            "api_tokens": [TOKEN], "heartbeat_timeout": "3s", "worker_tls": not plaintext, "log_level": "debug"})

    def start_attacker(self, mode):
        argv = ["ip", "netns", "exec", self.attacker_ns, sys.executable, os.path.join(REPO, "tests", "onpath.py"),
                mode, ATTACKER, "7070", MASTER, "7070", self.record]
        argv += list(self_signed(self.directory, "attacker")) if mode == "mitm" else ["-", "-"]
        argv.append(self.mark)
        self.attacker = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.attacker.stdout.readline().strip() == "listening"

    def start_worker(self):
        self.worker = start_in_namespace(self.bed, self.worker_ns, "worker", os.path.join(self.directory, "worker"), {
            "cluster_key": KEY, "state_dir": os.path.join(self.directory, "worker-state"),
            "master_host": ATTACKER, "node_name": "pi1", "master_tls": not self.plaintext,
            "heartbeat_interval": "0.5s", "link_timeout": "3s", "reconnect_min": "0.2s", "reconnect_max": "1s",
            "log_level": "debug"})
        return self.worker

    def api(self, method, path, body=None):
        return self.bed.api(MASTER, method, path, TOKEN, body,
                            cacert=os.path.join(self.directory, "master-state", "tls", "api.crt"))

    def online(self):
        status, body = self.api("GET", "/workers")
        return status == 200 and [w["name"] for w in body["workers"] if w["online"]] == ["pi1"]

    def run(self, cmd):
        status, submitted = self.api("POST", "/job", {"cmd": cmd, "workers": ["pi1"]})
        assert status == 202, submitted
        return self.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]

    def recorded(self):
        with open(self.record, "rb") as handle:
            return handle.read()

    def close(self):
        if self.attacker is not None and self.attacker.poll() is None:
            self.attacker.kill()
            self.attacker.wait(10)


@pytest.fixture
def lab_factory(netbed, tmp_path):
    labs = []

    def make(plaintext=False):
        labs.append(Lab(netbed, str(tmp_path), plaintext))
        wait_until(lambda: labs[-1].api("GET", "/health")[0] == 200, timeout=30, what="master up")
        return labs[-1]
    yield make
    for lab in labs:
        lab.close()


@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext-control"])
def test_a_sniffer_on_the_path_reads_no_command_and_no_output(lab_factory, plaintext):
    lab = lab_factory(plaintext)
    lab.start_attacker("record")
    lab.start_worker()
    wait_until(lab.online, timeout=30, interval=0.3, what="worker online through the relay")
    pool = lab.run(SECRET_CMD)
    assert pool["jobs"]["pi1"]["stdout"] == "the-secret-command-7c1f\n%s\n" % SECRET_OUTPUT
    recorded = lab.recorded()
    assert len(recorded) > 1000, "the relay carried the session"
    seen = [text for text in (b"the-secret-command-7c1f", SECRET_OUTPUT.encode(), b'"hello"', b'"heartbeat"')
            if text in recorded]
    if plaintext:
        assert len(seen) == 4, "the control: in plaintext the sniffer reads everything"
    else:
        assert seen == [], "the sniffer read %s through TLS" % seen


@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext-control"])
def test_a_run_frame_injected_into_a_live_session_runs_nothing_and_closes_it(lab_factory, plaintext):
    lab = lab_factory(plaintext)
    lab.start_attacker("inject")
    worker = lab.start_worker()
    wait_until(lab.online, timeout=30, interval=0.3, what="worker online through the relay")
    if plaintext:
        wait_until(lambda: os.path.exists(lab.mark), timeout=15, what="the control: the forged job ran")
        return
    wait_until(lambda: "closed: TLS error (data forged or damaged on the way?)" in worker.log(), timeout=15,
               what="the worker closed the session over the forged bytes")
    assert not os.path.exists(lab.mark)
    assert "forged-by-attacker" not in worker.log()
    # The worker dials again, and real work goes through.
    wait_until(lab.online, timeout=30, interval=0.3, what="worker back online")
    assert lab.run("echo still-serving")["jobs"]["pi1"]["stdout"] == "still-serving\n"
    assert not os.path.exists(lab.mark)


def test_a_man_in_the_middle_with_his_own_certificate_is_refused_by_both_sides(lab_factory):
    lab = lab_factory()
    lab.start_attacker("mitm")
    worker = lab.start_worker()
    wait_until(lambda: "did not prove it holds the cluster key" in worker.log(), timeout=30,
               what="the worker refused the attacker's welcome")
    wait_until(lambda: "failed the cluster key check" in lab.master.log(), timeout=15,
               what="the master refused the relayed proof")
    assert b'MASTER-VERDICT {"type": "error", "code": "bad_key"' in lab.recorded()
    assert not os.path.exists(lab.mark)
    assert not lab.online()
    assert "forged-by-attacker" not in worker.log()
