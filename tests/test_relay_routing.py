"""Which way a streamed copy's bytes go, with real masters and workers on loopback: a copy
asked to go direct (`pcci copy --no-relay`, POST /copy ``"relay": false``) while the
cluster relays; a relay listener reached at the address its worker advertises
(``relay_advertise``), taken only where the master's ``relay_networks`` allow; and a
rolling batch, whose first turn is a tree and whose later turns come from the master; a
child that redials the master mid-pull, which then takes the rest from the master.

A child that pulled from a parent says so in its log (``pulling it from PARENT
(HOST:PORT)``); one whose pull failed says ``the rest comes from the master``.
127.0.0.2 and 127.0.0.3 are loopback addresses too: a worker can listen there, as on a
second interface."""

import os
import signal

import pytest

from conftest import free_port, wait_until
from linkproxy import LinkProxy
from test_cli import pcci
from test_notify_limits import rewrite
from test_relay_copy import BIND, log_of, start_workers, upload, uploaded_image, wait_pool
from test_streamed_copy import MB, file_sha256, make_file, partial_bytes


def start_worker_at(cluster, tmp_path, name, **settings):
    """One worker whose shared directory is its own (as start_workers), with these settings."""
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    own = tmp_path / ("disk-" + name)
    own.mkdir()
    cluster.start_worker(name, prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", BIND, "bind",
                                       str(own), str(shared)], **settings)
    return shared


def copy(cluster, names, digest, dest, **fields):
    status, submitted = cluster.api("POST", "/copy", dict(fields, workers=names, sha256=digest, dest=dest))
    assert status == 202, submitted
    return submitted["id"]


def all_succeeded(pool):
    return all(job["state"] == "succeeded" for job in pool["jobs"].values())


def test_relay_must_be_true_or_false_and_schedules_keep_it(cluster):
    cluster.start_master()
    schedule = {"name": "motd", "when": "every 1d", "workers": "pi1",
                "copy": {"dest": "/etc/motd", "content": "aGk=", "relay": False}}
    for bad in ("no", 0):
        status, answer = cluster.api("POST", "/copy", {"workers": ["pi1"], "dest": "/tmp/x", "content": "aGk=",
                                                       "relay": bad})
        assert status == 400 and answer["error"]["code"] == "wrong_type", answer
        assert "'relay' must be true" in answer["error"]["message"]
        status, answer = cluster.api("POST", "/schedules", dict(schedule, copy=dict(schedule["copy"], relay=bad)))
        assert status == 400 and "'relay' must be true" in answer["error"]["message"], answer
    refusals = [line for line in cluster.master.log().splitlines() if "-> 400 wrong_type: 'relay'" in line]
    assert len(refusals) == 4, refusals         # one line each
    status, answer = cluster.api("POST", "/schedules", schedule)
    assert status == 201, answer
    assert cluster.api("GET", "/schedules/motd")[1]["copy"]["relay"] is False


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_a_copy_asked_direct_comes_from_the_master_while_the_cluster_relays(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=2)
    names = ["pi1", "pi2", "pi3"]
    shared = start_workers(cluster, tmp_path, names)
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port}
    source = tmp_path / "image.bin"
    digest = make_file(source, 4 * MB)         # over 256 KiB: pcci copy uploads it and streams it
    done = pcci("copy", "--no-relay", str(source), "-w", "pi[1-3]", "--dest", str(shared / "direct.bin"), env=env,
                timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in names:
        assert file_sha256(tmp_path / ("disk-" + name) / "direct.bin") == digest
        assert "pulling it from" not in log_of(cluster, name)
    pool = cluster.api("GET", "/pools?limit=1")[1]["pools"][0]
    assert pool["copy"]["relay"] is False
    # The same copy without --no-relay goes through the tree (fan-out 2: pi3 under pi1).
    done = pcci("copy", str(source), "-w", "pi[1-3]", "--dest", str(shared / "relayed.bin"), env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert file_sha256(tmp_path / "disk-pi3" / "relayed.bin") == digest
    assert "pulling it from pi1" in log_of(cluster, "pi3")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_children_dial_an_advertised_address_inside_relay_networks_and_never_one_outside(cluster, tmp_path):
    """Every link comes from 127.0.0.1. pi1 listens only on 127.0.0.2 and advertises it (in
    relay_networks): its child reaches it there, which the link's address would not. pi2
    advertises 127.0.0.3 (it listens there), outside relay_networks: the master makes it
    no parent, says so once, and nobody dials it. pi3 advertises nothing."""
    cluster.start_master(copy_relay_fanout=1, relay_networks=["127.0.0.2/32"])
    start_worker_at(cluster, tmp_path, "pi1", relay_listen="127.0.0.2:0", relay_advertise="127.0.0.2")
    start_worker_at(cluster, tmp_path, "pi2", relay_listen="127.0.0.3:0", relay_advertise="127.0.0.3")
    shared = start_worker_at(cluster, tmp_path, "pi3", relay_listen="127.0.0.1:0")
    source, digest = uploaded_image(cluster, tmp_path, 6 * MB)
    pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "image.bin")), timeout=120)
    assert all_succeeded(pool), pool
    for name in ("pi1", "pi2", "pi3"):
        assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
    # Parents first (pi1, pi3), then pi2, a leaf: a chain pi1 <- pi3 <- pi2 at fan-out 1.
    assert "pulling it from pi1 (127.0.0.2:" in log_of(cluster, "pi3")
    assert "pulling it from pi3 (127.0.0.1:" in log_of(cluster, "pi2")
    for name in ("pi2", "pi3"):
        assert "the rest comes from the master" not in log_of(cluster, name)
    assert not any("pulling it from pi2" in log_of(cluster, name) for name in ("pi1", "pi3"))
    refusals = [line for line in cluster.master.log().splitlines() if "serves no relays" in line]
    assert len(refusals) == 1 and "worker pi2" in refusals[0] and "127.0.0.3" in refusals[0], refusals
    assert "relay_networks" in refusals[0]


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_an_advertised_port_on_the_links_own_address_needs_no_relay_networks(cluster, tmp_path):
    """A port forward (a NAT's, here a TCP forwarder on 127.0.0.1): pi1 listens on port P and
    advertises 127.0.0.1:Q; its child's bytes go through Q."""
    cluster.start_master(copy_relay_fanout=1)
    listen = free_port()
    forward = LinkProxy(listen)
    try:
        start_worker_at(cluster, tmp_path, "pi1", relay_listen="127.0.0.1:%d" % listen,
                        relay_advertise="127.0.0.1:%d" % forward.port)
        shared = start_worker_at(cluster, tmp_path, "pi2")
        start_worker_at(cluster, tmp_path, "pi3")
        source, digest = uploaded_image(cluster, tmp_path, 4 * MB)
        pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "image.bin")),
                         timeout=120)
        assert all_succeeded(pool), pool
        for name in ("pi1", "pi2", "pi3"):
            assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
        # pi1 the only parent; at fan-out 1 it takes one child, pi2; pi3 comes from the master.
        assert "pulling it from pi1 (127.0.0.1:%d)" % forward.port in log_of(cluster, "pi2")
        assert "the rest comes from the master" not in log_of(cluster, "pi2")
        assert forward.sockets, "nothing went through the advertised port"
        assert "serves no relays" not in cluster.master.log()
    finally:
        forward.close()


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_a_rolling_batch_relays_its_first_turn_and_sends_later_ones_direct(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=2)
    names = ["pi%d" % n for n in range(1, 6)]
    shared = start_workers(cluster, tmp_path, names)
    source, digest = uploaded_image(cluster, tmp_path, 4 * MB)
    pool = wait_pool(cluster, copy(cluster, names, digest, str(shared / "image.bin"), batch=3), timeout=120)
    assert all_succeeded(pool), pool
    for name in names:
        assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
    # The first turn, pi1-pi3, is a tree (fan-out 2: pi1 and pi2 from the master, pi3 under
    # pi1); pi4 and pi5 start one at a time as jobs end, too few for a tree.
    assert "pulling it from pi1" in log_of(cluster, "pi3")
    for name in ("pi1", "pi2", "pi4", "pi5"):
        assert "pulling it from" not in log_of(cluster, name)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_a_child_that_redials_the_master_mid_pull_takes_the_rest_from_the_master(cluster, tmp_path):
    """A chain pi1 <- pi2 <- pi3 whose root is slow: pi2's link to the master drops while it
    pulls from pi1; once it is back, pi2 says where its file ends and the master sends the
    rest (its log: goes on from byte N), and pi2 does not pull from pi1 again."""
    cluster.start_master(copy_relay_fanout=1)
    slow_root, child_link = LinkProxy(cluster.worker_port), LinkProxy(cluster.worker_port)
    try:
        start_worker_at(cluster, tmp_path, "pi1", master_port=slow_root.port, relay_listen="127.0.0.1:0")
        shared = start_worker_at(cluster, tmp_path, "pi2", master_port=child_link.port, relay_listen="127.0.0.1:0")
        start_worker_at(cluster, tmp_path, "pi3", relay_listen="127.0.0.1:0")
        source = tmp_path / "big.bin"
        size = 16 * MB
        digest = make_file(source, size)
        upload(cluster, source, digest)
        slow_root.shape(delay=0.02)         # pi1 gets the file at ~3 MB/s, and passes it on as slowly
        pool_id = copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "big.bin"))
        wait_until(lambda: partial_bytes(tmp_path / "disk-pi2") >= size // 8, timeout=90, interval=0.02,
                   what="an eighth of the file on pi2, from pi1")
        child_link.cut()
        child_link.restore()

        def went_on():
            return [line for line in cluster.master.log().splitlines()
                    if "copy %s/pi2 to pi2 goes on from byte" % pool_id in line]
        wait_until(went_on, timeout=30, what="pi2 back, asking the master for the rest")
        slow_root.shape()
        assert int(went_on()[0].split("goes on from byte ")[1].split()[0]) >= size // 8, went_on()
        pool = wait_pool(cluster, pool_id, timeout=120)
        assert all_succeeded(pool), pool
        for name in ("pi1", "pi2", "pi3"):
            assert file_sha256(tmp_path / ("disk-" + name) / "big.bin") == digest
        assert log_of(cluster, "pi2").count("pulling it from pi1") == 1
    finally:
        slow_root.close()
        child_link.close()


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_a_narrowed_relay_networks_takes_effect_on_sighup_for_connected_workers(cluster, tmp_path):
    """pi1 advertises 127.0.0.2, inside relay_networks: a first copy pulls from it. The admin
    then empties relay_networks and reloads (SIGHUP), without a restart and without pi1
    reconnecting: the master says pi1 serves no relays from now on, and the next copy's
    children do not dial it."""
    cluster.start_master(copy_relay_fanout=1, relay_networks=["127.0.0.2/32"])
    start_worker_at(cluster, tmp_path, "pi1", relay_listen="127.0.0.2:0", relay_advertise="127.0.0.2")
    start_worker_at(cluster, tmp_path, "pi2", relay_listen="127.0.0.1:0")
    shared = start_worker_at(cluster, tmp_path, "pi3", relay_listen="127.0.0.1:0")
    source, digest = uploaded_image(cluster, tmp_path, 6 * MB)
    first = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "first.bin")), timeout=120)
    assert all_succeeded(first), first
    assert any("pulling it from pi1 (127.0.0.2:" in log_of(cluster, name) for name in ("pi2", "pi3"))

    rewrite(cluster.master, relay_networks=[])
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: "worker pi1 serves no relays from now on" in cluster.master.log(), what="pi1's relay dropped")
    pulls_before = {name: log_of(cluster, name).count("pulling it from pi1") for name in ("pi2", "pi3")}
    second = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "second.bin")), timeout=120)
    assert all_succeeded(second), second
    for name in ("pi1", "pi2", "pi3"):
        assert file_sha256(tmp_path / ("disk-" + name) / "second.bin") == digest
    assert {name: log_of(cluster, name).count("pulling it from pi1") for name in ("pi2", "pi3")} == pulls_before
    assert "pulling it from pi2" in log_of(cluster, "pi3") or "pulling it from pi3" in log_of(cluster, "pi2")
    assert cluster.master.process.poll() is None
