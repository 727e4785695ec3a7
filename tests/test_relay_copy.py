"""Copies relayed through workers (a tree, pcci.master.relay_plan), with real masters and
workers: every worker ends with the same bytes (two through a chain); a parent killed
mid-copy leaves its children to finish from the master; a relay serves only a copy it
was told to relay, to the child its ticket names, while the ticket lasts; an older worker
gets the direct stream; and no worker listens for relays unless its config says so.

All workers run on this one machine but a copy has one destination, so each worker runs
in a mount namespace of its own where its own directory is bound over the shared path
(root only)."""

import os
import ssl
import socket
import time

import psutil
import pytest

from conftest import wait_until
from linkproxy import LinkProxy
from test_streamed_copy import MB, file_sha256, make_file, partial_bytes

from pcci import relay_ticket, relay_wire, tls
from pcci.master.relay_plan import MIN_CHAIN_BYTES

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")]

BIND = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


def start_worker_on_own_disk(cluster, tmp_path, name, shared, **settings):
    """A worker whose ``shared`` path is its own directory, tmp_path/disk-NAME."""
    own = tmp_path / ("disk-" + name)
    own.mkdir()
    cluster.start_worker(name, prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", BIND,
                                       "bind", str(own), str(shared)], **settings)


def start_workers(cluster, tmp_path, names, relay=True, **overrides):
    """Workers whose /…/shared is their own directory; the shared path to copy to."""
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    for name in names:
        settings = dict(overrides)
        if relay:
            settings["relay_listen"] = "127.0.0.1:0"
        start_worker_on_own_disk(cluster, tmp_path, name, shared, **settings)
    return shared


def upload(cluster, source, digest):
    status, uploaded = cluster.api("PUT", "/files/%s?size=%d" % (digest, os.path.getsize(source)),
                                   raw=source.read_bytes())
    assert status == 201 and uploaded["complete"], uploaded


def uploaded_image(cluster, tmp_path, size):
    """A file of ``size`` random bytes, image.bin in tmp_path, uploaded to the master: (path, sha256)."""
    source = tmp_path / "image.bin"
    digest = make_file(source, size)
    upload(cluster, source, digest)
    return source, digest


def copy(cluster, names, digest, dest):
    status, submitted = cluster.api("POST", "/copy", {"workers": names, "sha256": digest, "dest": dest})
    assert status == 202, submitted
    return submitted["id"]


def wait_pool(cluster, pool_id, timeout):
    status, pool = cluster.api("GET", "/pool/%s?wait=%d" % (pool_id, timeout), timeout=timeout + 10)
    assert status == 200 and pool["status"] == "done", pool
    return pool


def log_of(cluster, name):
    return cluster.workers[name].log()


def test_a_copy_through_a_tree_reaches_every_worker_whole(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=2)
    names = ["pi%d" % n for n in range(1, 6)]
    shared = start_workers(cluster, tmp_path, names)
    source, digest = uploaded_image(cluster, tmp_path, 12 * MB)
    pool = wait_pool(cluster, copy(cluster, names, digest, str(shared / "image.bin")), timeout=120)
    assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    for name in names:
        assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
        assert os.listdir(tmp_path / ("disk-" + name)) == ["image.bin"]
    # Fan-out 2: pi1 and pi2 from the master; pi3 and pi4 under pi1, pi5 under pi2.
    assert "pulling it from pi1" in log_of(cluster, "pi3") and "pulling it from pi1" in log_of(cluster, "pi4")
    assert "pulling it from pi2" in log_of(cluster, "pi5")
    for name in names:
        assert "the rest comes from the master" not in log_of(cluster, name)


def test_a_copy_to_two_workers_goes_through_a_chain(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=2)
    shared = start_workers(cluster, tmp_path, ["pi1", "pi2"])
    source = tmp_path / "image.bin"
    digest = make_file(source, MIN_CHAIN_BYTES)     # the smallest file that makes a chain
    upload(cluster, source, digest)
    pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2"], digest, str(shared / "image.bin")), timeout=60)
    assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    for name in ("pi1", "pi2"):
        assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
    # The master feeds pi1 alone; pi2 pulls from it (the master's link carries the file once).
    assert "pulling it from pi1" in log_of(cluster, "pi2") and "pulling it from" not in log_of(cluster, "pi1")
    assert "the rest comes from the master" not in log_of(cluster, "pi2")


@pytest.mark.slow
def test_children_of_a_parent_killed_mid_copy_finish_from_the_master(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=1)     # a chain: pi1 <- pi2 <- pi3
    proxy = LinkProxy(cluster.worker_port)
    try:
        shared = tmp_path / "shared"
        shared.mkdir()
        own = tmp_path / "disk-pi1"
        own.mkdir()
        cluster.start_worker("pi1", master_port=proxy.port, relay_listen="127.0.0.1:0",
                             prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", BIND, "bind",
                                     str(own), str(shared)])
        start_workers(cluster, tmp_path, ["pi2", "pi3"])
        source = tmp_path / "big.bin"
        size = 24 * MB
        digest = make_file(source, size)
        upload(cluster, source, digest)
        proxy.shape(delay=0.004)        # pi1, the root, is slow: it is killed while it passes bytes on
        pool_id = copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "big.bin"))
        wait_until(lambda: partial_bytes(tmp_path / "disk-pi2") >= size // 4, timeout=90, interval=0.02,
                   what="a quarter of the file on pi2, from pi1")
        cluster.workers["pi1"].kill()
        proxy.shape()

        def finished():
            jobs = cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]
            return all(jobs[name]["state"] == "succeeded" for name in ("pi2", "pi3"))
        wait_until(finished, timeout=120, what="pi2 and pi3 done")
        for name in ("pi2", "pi3"):
            assert file_sha256(tmp_path / ("disk-" + name) / "big.bin") == digest
        assert "the rest comes from the master" in log_of(cluster, "pi2")
    finally:
        proxy.close()


def pull_request(port, job, child, sha256, expires, ticket, offset=0, fingerprint=None):
    """A relay_pull to a worker's listener, as a child would send it: the answer frame."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw) as sock:
            if fingerprint is not None:
                assert tls.peer_fingerprint(sock) == fingerprint
            sock.sendall(relay_wire.pull(job, child, sha256, expires, ticket, offset))
            return relay_wire.read_message(sock)


def relay_port(cluster, name):
    line = [line for line in log_of(cluster, name).splitlines() if "relay listener on" in line][-1]
    return int(line.split("relay listener on ")[1].split()[0].rsplit(":", 1)[1])


def test_a_relay_refuses_forged_expired_and_wrong_child_tickets_and_any_path(cluster, tmp_path):
    """A real relay, holding a copy it passes on (a slow root of a chain), asked by hand."""
    cluster.start_master(copy_relay_fanout=1)
    proxy = LinkProxy(cluster.worker_port)
    try:
        shared = tmp_path / "shared"
        shared.mkdir()
        start_worker_on_own_disk(cluster, tmp_path, "pi1", shared, master_port=proxy.port, relay_listen="127.0.0.1:0")
        start_workers(cluster, tmp_path, ["pi2", "pi3"])
        source = tmp_path / "big.bin"
        digest = make_file(source, 16 * MB)
        upload(cluster, source, digest)
        proxy.shape(delay=0.004)
        pool_id = copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "big.bin"))
        wait_until(lambda: partial_bytes(tmp_path / "disk-pi1") > 0, timeout=30, what="pi1 writing")
        port = relay_port(cluster, "pi1")
        job = "%s/pi1" % pool_id
        now = int(time.time() * 1000)
        forged = relay_ticket.make("00" * 32, job, digest, "pi2", now + 60000)
        answers = {
            "forged": pull_request(port, job, "pi2", digest, now + 60000, forged),
            "expired": pull_request(port, job, "pi2", digest, now - 1000, forged),
            "path": pull_request(port, "/etc/shadow", "pi2", digest, now + 60000, forged),
            "not relayed": pull_request(port, "%s/pi3" % pool_id, "pi2", digest, now + 60000, forged),
        }
        for what, answer in answers.items():
            assert answer["type"] == "error", (what, answer)
        assert answers["forged"]["code"] == "bad_ticket" and answers["expired"]["code"] == "bad_ticket"
        assert answers["path"]["code"] == "unknown_copy" and answers["not relayed"]["code"] == "unknown_copy"
        refusals = [line for line in log_of(cluster, "pi1").splitlines() if "relay: refused" in line]
        assert len(refusals) == 4, refusals         # one line each
        assert "/etc/shadow" in refusals[2]
        proxy.shape()
        pool = wait_pool(cluster, pool_id, timeout=120)
        assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    finally:
        proxy.close()


def test_an_older_worker_without_the_feature_gets_the_direct_stream(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=1)
    site = tmp_path / "old-worker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from pcci import protocol\n"
        "protocol.FEATURES = tuple(n for n in protocol.FEATURES if n != protocol.RELAY)\n")
    shared = start_workers(cluster, tmp_path, ["pi1", "pi2", "pi3"])
    (tmp_path / "disk-old").mkdir()
    cluster.start_worker("old", python_path=[str(site)], relay_listen="127.0.0.1:0",
                         prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", BIND, "bind",
                                 str(tmp_path / "disk-old"), str(shared)])
    source, digest = uploaded_image(cluster, tmp_path, 4 * MB)
    pool = wait_pool(cluster, copy(cluster, ["old", "pi1", "pi2", "pi3"], digest, str(shared / "image.bin")),
                     timeout=60)
    assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    for name in ("pi1", "pi2", "pi3", "old"):
        assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
    # A chain of the three that can relay (fan-out 1); the older worker straight from the master.
    assert "pulling it from pi1" in log_of(cluster, "pi2") and "pulling it from pi2" in log_of(cluster, "pi3")
    assert "pulling it from" not in log_of(cluster, "old")


def test_no_relay_listener_unless_the_config_says_so(cluster, tmp_path):
    cluster.start_master(copy_relay_fanout=2)
    shared = start_workers(cluster, tmp_path, ["pi1", "pi2", "pi3"], relay=False)
    for name in ("pi1", "pi2", "pi3"):
        assert "relay listener" not in log_of(cluster, name)
        pid = cluster.workers[name].process.pid
        process = psutil.Process(pid)
        connections = getattr(process, "net_connections", None) or process.connections
        listening = [c for c in connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert listening == [], listening
    source, digest = uploaded_image(cluster, tmp_path, 2 * MB)
    pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "image.bin")), timeout=60)
    assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    assert not any("pulling it from" in log_of(cluster, name) for name in ("pi1", "pi2", "pi3"))


def test_bytes_a_relay_corrupted_are_taken_again_from_the_master(cluster, tmp_path):
    """A parent that flips a bit in what it passes on (a sitecustomize wraps its reads):
    its child's sha256 check catches it, and the child takes the file again from the master;
    so does the grandchild, whose parent's bytes were bad and whose rest came direct."""
    cluster.start_master(copy_relay_fanout=1)
    site = tmp_path / "corrupting"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\n"
        "from pcci.worker import relay_server\n"
        "class Corrupting:\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(os, name)\n"
        "    @staticmethod\n"
        "    def pread(fd, length, offset):\n"
        "        data = os.pread(fd, length, offset)\n"
        "        return bytes([data[0] ^ 1]) + data[1:] if offset == 0 and data else data\n"
        "relay_server.os = Corrupting()\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    start_worker_on_own_disk(cluster, tmp_path, "pi1", shared, python_path=[str(site)], relay_listen="127.0.0.1:0")
    start_workers(cluster, tmp_path, ["pi2", "pi3"])
    source, digest = uploaded_image(cluster, tmp_path, 4 * MB)
    pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "image.bin")), timeout=60)
    assert {name: job["state"] for name, job in pool["jobs"].items()} == dict.fromkeys(("pi1", "pi2", "pi3"),
                                                                                          "succeeded"), (
        pool["jobs"], log_of(cluster, "pi2")[-3000:], log_of(cluster, "pi3")[-3000:])
    for name in ("pi1", "pi2", "pi3"):
        assert file_sha256(tmp_path / ("disk-" + name) / "image.bin") == digest
    assert "taking it again from the master" in log_of(cluster, "pi2")
