"""Attacks on relays (2026-12-06 red team), with real masters and workers on loopback: a
stranger who dials a worker's relay listener in a loop, and a worker that advertises an
address naming no parent at all (each child's own host)."""

import os
import socket
import time
import urllib.request

import pytest

from conftest import wait_until
from raw_worker import RawWorker
from test_relay_copy import copy, log_of, pull_request, relay_port, start_workers, upload, wait_pool
from test_streamed_copy import MB, make_file

from pcci import protocol


def relay_lines(cluster, name):
    return [line for line in log_of(cluster, name).splitlines() if "relay:" in line]


def test_a_stranger_dialing_the_relay_listener_in_a_loop_does_not_flood_its_log(cluster):
    """No key, no ticket, no TLS: a TCP connect and a close, 300 times from ten addresses.
    Each was one warning line on the worker (a Pi's SD card, journald's rate limit then
    dropping the worker's own lines); the master's ports budget such lines, so must this."""
    cluster.start_master()
    cluster.start_worker("pi1", relay_listen="127.0.0.1:0")
    port = relay_port(cluster, "pi1")
    before = len(relay_lines(cluster, "pi1"))
    deadline = time.monotonic() + 30
    for index in range(300):
        assert time.monotonic() < deadline
        with socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=("127.0.0.%d" % (2 + index % 10), 0)):
            pass
    time.sleep(1.0)     # the listener has seen every one
    lines = relay_lines(cluster, "pi1")[before:]
    assert len(lines) <= 30, "%d lines, the last: %s" % (len(lines), lines[-3:])
    # Still serving: a request is answered (a copy it does not relay).
    answer = pull_request(port, "no-such-job", "pi2", "0" * 64, 0, "00")
    assert (answer["type"], answer["code"]) == ("error", "unknown_copy")


def test_an_advertised_address_naming_each_childs_own_host_is_refused_even_inside_relay_networks(cluster):
    """A compromised worker (it holds the key, so it can say anything in its hello) under a
    master whose relay_networks take everything: advertising 0.0.0.0 (or ::ffff:0.0.0.0)
    at a port of its choice made every child of its copies dial that port on the child's
    own host (0.0.0.0 is the local host), a probe of each child's local services. It now
    serves no relays, with the master's one line saying why."""
    cluster.start_master(copy_relay_fanout=2, relay_networks=["0.0.0.0/0", "::/0"])
    evil = []
    try:
        for index, host in enumerate(("0.0.0.0", "::ffff:0.0.0.0", "::")):
            evil.append(RawWorker(cluster.worker_port, "evil%d" % index, features=[protocol.RELAY],
                                  relay={"host": host, "port": 22, "fingerprint": "sha256:" + "ab" * 32}))

        def relay_lines_of_evil():
            lines = [line for line in cluster.master.log().splitlines() if "worker evil" in line and "relay" in line]
            return lines if len(lines) >= 3 else None
        lines = wait_until(relay_lines_of_evil, timeout=10)
        assert not any("serves relays at" in line for line in lines), lines
        refused = [line for line in lines if "serves no relays" in line and "names each child's own host" in line]
        assert len(refused) == 3, lines
    finally:
        for worker in evil:
            worker.close()


ADMIN = "admin-token-0123456789abcdef"
READER = "read-token-0123456789abcdef"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_a_read_token_sees_no_relay_secret_and_cannot_set_relay(cluster, tmp_path):
    """Attack that held: a relayed copy's keys and tickets go only into copy_begin frames on
    the parents' and children's links; a read token finds none of them in the pool, the
    pools, the workers, the dashboard or the metrics, and cannot submit a copy."""
    cluster.start_master(copy_relay_fanout=2, api_tokens=[{"name": "root", "scope": "admin", "token": ADMIN},
                                                          {"name": "eve", "scope": "read", "token": READER}])
    shared = start_workers(cluster, tmp_path, ["pi1", "pi2", "pi3"])
    source = tmp_path / "image.bin"
    digest = make_file(source, 3 * MB)
    upload(cluster, source, digest)
    pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "image.bin")), timeout=120)
    assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    assert "pulling it from pi1" in log_of(cluster, "pi3")
    seen = []
    for path in ("/pool/%s" % pool["id"], "/pools", "/workers", "/metrics", "/"):
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (cluster.api_port, path),
                                         headers={"Authorization": "Bearer " + READER})
        with urllib.request.urlopen(request, timeout=30) as response:
            seen.append(response.read().decode("utf-8", "replace"))
    for text in seen:
        for secret in ("relayKey", "relayFrom", "relayChildren", "ticket"):
            assert secret not in text
    status, answer = cluster.api("POST", "/copy", {"workers": ["pi1"], "sha256": digest, "dest": "/tmp/x",
                                                   "relay": False}, token=READER)
    assert status == 403, answer


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="workers in mount namespaces need root")
def test_a_dual_stack_master_gives_children_the_parents_ipv4_address(cluster, tmp_path):
    """A master listening on [::] sees an IPv4 worker as ::ffff:a.b.c.d. Children were told to
    dial that form (an IPv6 socket: no relay at all on a Pi booted with ipv6.disable=1), and
    a parent's reserve for its children held that form while its IPv4 listener sees a.b.c.d
    (strangers could then fill the slots its children need)."""
    from test_relay_routing import start_worker_at
    cluster.start_master(copy_relay_fanout=1, worker_host="::")
    for name in ("pi1", "pi2"):
        start_worker_at(cluster, tmp_path, name, relay_listen="127.0.0.1:0")
    shared = start_worker_at(cluster, tmp_path, "pi3", relay_listen="127.0.0.1:0")
    source = tmp_path / "image.bin"
    digest = make_file(source, 3 * MB)
    upload(cluster, source, digest)
    pool = wait_pool(cluster, copy(cluster, ["pi1", "pi2", "pi3"], digest, str(shared / "image.bin")), timeout=120)
    assert all(job["state"] == "succeeded" for job in pool["jobs"].values()), pool
    assert "online from ::ffff:127.0.0.1" in cluster.master.log()       # the dual-stack form, as said
    pulled = [line for line in log_of(cluster, "pi2").splitlines() if "pulling it from pi1" in line]
    assert pulled and "(127.0.0.1:" in pulled[0], pulled
