"""A connected worker's messages are read as they come: an idle worker holds no greenlet on
the master, and a silent or vanished one is still found and let go (session_reader)."""

import gc

import time

import gevent
import gevent.event
import gevent.socket
import greenlet
import pytest

from conftest import KEY
from harness import FakeWorker, InProcessMaster
from pcci import framing, protocol, tls
from pcci.framing import ConnectionClosed
from pcci.handshake import worker_side as handshake
from pcci.link import Link
from pcci.master import session_reader

SESSION_MODULES = ("pcci/master/worker_port.py", "pcci/master/worker_sessions.py", "pcci/master/session_reader.py")


@pytest.fixture
def master(tmp_path):
    made = []

    def make(**overrides):
        made.append(InProcessMaster(tmp_path, **overrides))
        return made[0]
    yield make
    for one in made:
        one.stop()


def greenlets_in_sessions():
    """Live greenlets now running or parked in the master's worker session code, but for
    the spare readers parked between bursts (at most SPARE_READERS, however many workers)."""
    found = []
    for item in gc.get_objects():
        if isinstance(item, greenlet.greenlet) and not item.dead and item not in session_reader._spare:
            frame = item.gr_frame
            while frame is not None:
                if frame.f_code.co_filename.endswith(SESSION_MODULES):
                    found.append(item)
                    break
                frame = frame.f_back
    return found


def silent_worker(port, name, plaintext=False):
    """A worker that proves the key, syncs, then says nothing more; its link."""
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=10)
    fingerprint = ""
    if not plaintext:
        sock = tls.link_client_context().wrap_socket(sock)
        fingerprint = tls.peer_fingerprint(sock)
    link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES)
    handshake(link, KEY, name, 10, fingerprint)
    link.send({"type": protocol.SYNC, "running": []})
    return link


def online(master):
    return {w["name"] for w in master.api("GET", "/workers")[1]["workers"] if w["online"]}


def test_idle_workers_hold_no_greenlet_on_the_master_and_still_run_jobs(master):
    served = master()
    names = ["pi%d" % n for n in range(session_reader.SPARE_READERS + 8)]
    for name in names:
        served.start_worker(name, wait=False)
    served.wait_online(*names, timeout=30)
    pool = served.run("echo hello", names)
    assert {job["stdout"] for job in pool["jobs"].values()} == {"hello\n"}
    gevent.sleep(0.3)       # the workers idle, beating every 0.5 s
    assert greenlets_in_sessions() == []
    assert len(session_reader._spare) <= session_reader.SPARE_READERS < len(names)
    assert online(served) == set(names)


@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext"])
def test_a_worker_that_falls_silent_is_let_go_after_the_heartbeat_timeout(master, plaintext):
    served = master(heartbeat_timeout="1s", worker_tls=not plaintext)
    link = silent_worker(served.worker_port, "quiet", plaintext)
    try:
        served.wait_until(lambda: "quiet" in online(served), what="online")
        served.wait_until(lambda: "quiet" not in online(served), timeout=10, what="let go")
        with pytest.raises(ConnectionClosed):
            while True:             # the welcome, maybe a ping, then the master's close
                link.receive(5)
    finally:
        link.close()
    # The name is free again, and a worker that talks keeps its session past the timeout.
    talker = silent_worker(served.worker_port, "quiet", plaintext)
    try:
        for _ in range(8):
            talker.send({"type": protocol.HEARTBEAT, "stats": {"cpuPercent": 1.0}, "running": []})
            gevent.sleep(0.25)
        assert "quiet" in online(served)
    finally:
        talker.close()


def test_a_worker_that_closes_its_link_goes_offline_and_its_name_can_return(master):
    served = master()
    worker = served.start_worker("pi1")
    worker.stop()
    served.wait_until(lambda: "pi1" not in online(served), what="offline")
    served.start_worker("pi1")
    assert served.run("echo again", ["pi1"])["jobs"]["pi1"]["stdout"] == "again\n"


def test_a_newcomer_replaces_a_session_that_does_not_answer_its_ping(master):
    served = master()
    old = silent_worker(served.worker_port, "pi1")      # never answers the name probe's ping
    try:
        served.wait_until(lambda: "pi1" in online(served), what="online")
        served.workers["pi1"] = FakeWorker(served.worker_port, "pi1")
        with pytest.raises(ConnectionClosed):
            while True:             # the welcome, the probe's ping, then the master's close
                old.receive(5)
    finally:
        old.close()
    served.wait_online("pi1")
    assert served.run("echo new", ["pi1"])["jobs"]["pi1"]["stdout"] == "new\n"


def test_a_frame_never_finished_holds_no_greenlet_and_is_let_go_when_the_bytes_stop(master):
    """A worker that starts a 1 MB frame and sends it a byte at a time, then stops: each byte
    is heard (a large frame arriving slowly is not silence), no greenlet waits for the rest,
    and once the bytes stop the worker is let go after heartbeat_timeout."""
    served = master(heartbeat_timeout="1s")
    link = silent_worker(served.worker_port, "dribbler")
    try:
        served.wait_until(lambda: "dribbler" in online(served), what="online")
        link.sock.sendall(framing.HEADER.pack(1024 * 1024) + b'{"type": "heartbeat", "stats": ')
        for _ in range(12):         # 3 s of a byte every 0.25 s: past the timeout, never silent for it
            link.sock.sendall(b" ")
            gevent.sleep(0.25)
            assert greenlets_in_sessions() == []
        assert "dribbler" in online(served)
        served.wait_until(lambda: "dribbler" not in online(served), timeout=10, what="let go")
    finally:
        link.close()


class Recorder:
    """A SessionReader's owner that notes which greenlet handled each message; with
    ``block_first`` the first message's handler waits on ``release`` (one that blocks)."""

    def __init__(self, block_first=False):
        self.handled = []           # (session, message type, greenlet)
        self.release = gevent.event.Event()
        self.block_first = block_first

    def received(self, session, message):
        if self.block_first:
            self.block_first = False
            self.release.wait(10)
        self.handled.append((session, message["type"], greenlet.getcurrent()))

    def ended(self, session, exc):
        pass


def linked_readers(count, owner):
    """``count`` SessionReaders over socket pairs, started; the far ends, to write frames to."""
    far_ends, readers = [], []
    for number in range(count):
        near, far = gevent.socket.socketpair()
        reader = session_reader.SessionReader(Link(near, 4096), number, owner, 30)
        reader.start()
        far_ends.append(far)
        readers.append(reader)
    return far_ends, readers


def close_all(far_ends, readers):
    """Close the far ends and see every reader end (none left with a timer or a watcher for
    the tests after this one)."""
    for far in far_ends:
        far.close()
    deadline = time.monotonic() + 5
    while not all(reader._done for reader in readers) and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert all(reader._done for reader in readers), "a reader did not see its link's end"


def test_links_that_turn_readable_together_are_read_by_one_greenlet_not_one_each():
    owner = Recorder()
    far_ends, readers = linked_readers(100, owner)
    for far in far_ends:
        far.sendall(framing.encode({"type": "heartbeat"}))
    gevent.sleep(0.2)
    assert sorted(session for session, _, _ in owner.handled) == list(range(100))
    # One reader, and one more each time it gave the loop a turn, at most: not one for each link.
    assert len({reader for _, _, reader in owner.handled}) <= 1 + 100 // session_reader.LINKS_PER_TURN
    close_all(far_ends, readers)


@pytest.mark.parametrize("together", [True, False], ids=["queued-behind-it", "readable-after"])
def test_a_handler_that_blocks_holds_up_no_other_link(together):
    owner = Recorder(block_first=True)
    far_ends, readers = linked_readers(5, owner)
    first, others = (far_ends, []) if together else (far_ends[:1], far_ends[1:])
    for far in first:
        far.sendall(framing.encode({"type": "heartbeat"}))
    gevent.sleep(0.05)
    for far in others:
        far.sendall(framing.encode({"type": "heartbeat"}))
    gevent.sleep(0.2)
    assert len(owner.handled) == 4          # all but the one whose handler blocks
    owner.release.set()
    gevent.sleep(0.05)
    assert sorted(session for session, _, _ in owner.handled) == [0, 1, 2, 3, 4]
    far_ends[1].sendall(framing.encode({"type": "heartbeat"}))     # and the links are read again
    gevent.sleep(0.05)
    assert len(owner.handled) == 6
    close_all(far_ends, readers)
