"""Telling systemd the service is ready, alive and stopping (sd_notify), checked with a
real datagram socket standing in for systemd's, and real master and worker processes."""

import os
import signal
import socket
import time

import gevent
import pytest

from conftest import Service, wait_until
from pcci import service_manager


@pytest.fixture
def systemd_socket(tmp_path):
    """A datagram socket where systemd's would be: (its NOTIFY_SOCKET value, received messages)."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)

    def received(seconds=0.0):
        messages, deadline = [], time.monotonic() + seconds
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                if time.monotonic() >= deadline:
                    return messages
    yield path, received
    sock.close()


def test_nothing_is_sent_outside_systemd():
    assert service_manager.notify("READY=1", environ={}) is False
    assert service_manager.watchdog_interval({}) is None
    assert service_manager.ready("up", environ={}) is None


def test_the_messages_reach_the_socket_named_in_notify_socket(systemd_socket):
    path, received = systemd_socket
    assert service_manager.notify("READY=1\nSTATUS=serving", {"NOTIFY_SOCKET": path})
    assert received() == ["READY=1\nSTATUS=serving"]
    assert service_manager.notify("STOPPING=1", {"NOTIFY_SOCKET": path + ".gone"}) is False   # logged, not raised


def test_an_abstract_socket_name_works_too():
    name = "pcci-test-%d" % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert service_manager.notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"READY=1"


def test_the_watchdog_is_fed_at_half_its_interval_and_only_for_its_process(systemd_socket):
    path, received = systemd_socket
    assert service_manager.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert service_manager.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert service_manager.watchdog_interval({"WATCHDOG_USEC": "junk"}) is None
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    feeder = service_manager.ready("up", environ)
    gevent.sleep(0.45)
    feeder.kill()
    messages = received()
    assert messages[0] == "READY=1\nSTATUS=up" and 3 <= messages.count("WATCHDOG=1") <= 5


def test_a_real_master_says_ready_once_it_serves_pings_while_it_runs_and_stops_when_told(cluster, systemd_socket):
    path, received = systemd_socket
    master = Service("master", os.path.join(cluster.base, "master"), cluster.master_settings())
    master.env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    master.start()
    try:
        messages = wait_until(lambda: received(0.1), timeout=20, what="the master's READY")
        assert messages[0].startswith("READY=1\nSTATUS=API on 127.0.0.1:%d" % cluster.api_port)
        # Ready means serving: the API answers at once.
        assert cluster.api("GET", "/health")[0] == 200
        assert received(1.0).count("WATCHDOG=1") >= 3
        # A stopped event loop stops the pings: what systemd restarts it for.
        master.process.send_signal(signal.SIGSTOP)
        received(0.3)
        assert received(1.0) == []
        master.process.send_signal(signal.SIGCONT)
        assert "WATCHDOG=1" in received(1.0)
        master.process.terminate()
        master.process.wait(15)
        assert "STOPPING=1" in received(0.2)
    finally:
        master.process.send_signal(signal.SIGCONT)
        master.stop()


@pytest.mark.process
def test_an_unconfigured_worker_still_says_ready_before_it_exits(tmp_path, systemd_socket):
    """Type=notify: a worker that exits 0 without READY would be a failed start, and restarted."""
    path, received = systemd_socket
    worker = Service("worker", str(tmp_path / "worker"), {"state_dir": str(tmp_path / "state")})
    worker.env = {"NOTIFY_SOCKET": path}
    worker.start()
    assert worker.process.wait(30) == 0
    assert received(0.2) == ["READY=1\nSTATUS=not configured yet"]
