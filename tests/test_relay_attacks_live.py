"""Attacks on relays (2026-12-06 red team), with real masters and workers on loopback: a
stranger who dials a worker's relay listener in a loop, and a worker that advertises an
address naming no parent at all (each child's own host)."""

import socket
import time

from test_relay_copy import log_of, pull_request, relay_port


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
