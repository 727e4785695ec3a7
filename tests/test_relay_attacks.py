"""A worker's relay listener asked by hand (in this process, real TLS, a real partial file):
requests no child sends must get their refusal and one log line, never an error that
leaves the connection unanswered."""

import hashlib
import json
import os
import ssl
import time

import gevent
import gevent.socket
import pytest
from gevent import ssl as gevent_ssl

from conftest import self_signed
from pcci import framing, relay_ticket, relay_wire, tls
from pcci.worker.partial_file import PartialFile
from pcci.worker.relay_server import MAX_PRE_AUTH_PER_ADDRESS, RelayServer
from pcci.worker.relay_sources import RelaySources

JOB = "01a2488a-70f2-7141-81a5-0a1e519e3c4d/pi1"
DATA = b"relayed bytes\n" * 1000


@pytest.fixture
def relay(tmp_path):
    """A relay listener passing on a copy of DATA to child pi2 at 127.0.0.1; (port, key, sha256)."""
    yield from relay_listening_on("127.0.0.1", tmp_path)


@pytest.fixture
def dual_stack_relay(tmp_path):
    """The same, listening on [::] (relay_listen "[::]:PORT"): it sees IPv4 peers as ::ffff:a.b.c.d."""
    yield from relay_listening_on("::", tmp_path)


def relay_listening_on(host, tmp_path):
    digest = hashlib.sha256(DATA).hexdigest()
    stream = PartialFile(JOB, str(tmp_path / "copy.bin"), len(DATA), digest)
    stream.open()
    stream.append(0, DATA)
    key = relay_ticket.new_key()
    sources = RelaySources()
    sources.offer(JOB, stream, key, ["127.0.0.1"])
    cert, cert_key = self_signed(str(tmp_path))
    server = RelayServer((host, 0), tls.server_context(cert, cert_key), tls.file_fingerprint(cert), sources,
                         "pi1").start()
    yield server.port, key, digest
    server.close()
    stream.close()


def ask(port, job, child, sha256, expires, ticket):
    """The relay's answer frame to one relay_pull, as a child would send it."""
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with gevent.Timeout(15):
        sock = context.wrap_socket(gevent.socket.create_connection(("127.0.0.1", port)))
        try:
            # JSON with only ASCII escapes: a lone surrogate goes as \ud800, as any client may send it.
            payload = json.dumps({"type": relay_wire.PULL, "job": job, "child": child, "sha256": sha256,
                                  "expires": expires, "ticket": ticket, "offset": 0}).encode()
            sock.sendall(framing.HEADER.pack(len(payload)) + payload)
            return relay_wire.read_message(sock)
        finally:
            sock.close()


def test_a_ticket_of_any_text_is_refused_with_an_answer(relay, caplog):
    port, key, digest = relay
    expires = int(time.time() * 1000) + 60000
    for ticket in ("\u00e9" * 64, "\ud800", "", "zz" * 32):
        answer = ask(port, JOB, "pi2", digest, expires, ticket)
        assert (answer["type"], answer["code"]) == ("error", "bad_ticket"), (ticket, answer)
    good = relay_ticket.make(key, JOB, digest, "pi2", expires)
    assert ask(port, JOB, "pi2", digest, expires, good)["type"] == "relay_ok"
    assert len([r for r in caplog.records if "relay: refused" in r.getMessage()]) == 4


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("handshake", [False, True])
def test_connections_over_the_cap_are_closed_not_just_uncounted(relay, handshake):
    """A stranger that opens connections and sends nothing (or only its TLS handshake): each
    over the per-address cap displaces its oldest, which must really close. The listener
    held every one (an fd, a greenlet, a TLS object) for its 10 s: no bound but the
    stranger's dial rate."""
    port, _, _ = relay
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    before = open_fds()
    held = []
    try:
        with gevent.Timeout(30):
            for _ in range(40):
                sock = gevent.socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
                held.append(context.wrap_socket(sock) if handshake else sock)
                gevent.sleep(0.01)      # the listener accepts it
            gevent.sleep(0.2)
        # Ours are 40; the listener may hold its 4 per address (and a few closing).
        assert open_fds() - before <= 40 + MAX_PRE_AUTH_PER_ADDRESS + 2
    finally:
        for sock in held:
            sock.close()


def compromised_parent(tmp_path, name, size, send):
    """A compromised parent (it holds the cluster key, so the master may name it): it answers
    any relay_pull with relay_ok, then ``send(sock)`` sends the body as it likes;
    (port, fingerprint, stop)."""
    cert, cert_key = self_signed(str(tmp_path), name)
    context = tls.server_context(cert, cert_key)
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve():
        raw, _ = listener.accept()
        sock = context.wrap_socket(raw, server_side=True)
        relay_wire.read_message(sock)
        sock.sendall(relay_wire.ok(size))
        send(sock)
    server = gevent.spawn(serve)
    return listener.getsockname()[1], tls.file_fingerprint(cert), lambda: (server.kill(), listener.close())


def dripping_parent(tmp_path, size):
    """One byte every 0.2 s."""
    def drip(sock):
        for _ in range(size):
            sock.sendall(b"x")
            gevent.sleep(0.2)
    return compromised_parent(tmp_path, "dripper", size, drip)


def test_a_parent_that_drips_bytes_does_not_hold_its_child_forever(tmp_path):
    """Each byte within STALL_SECONDS reset the child's stall timer: at a byte per 0.2 s a
    1 MB copy would have taken 2.4 days, the child never going to the master. Now less than
    the floor in a window sends it to the master."""
    from pcci.worker.relay_pull import client_context, pull
    size = 1024 * 1024
    port, fingerprint, stop = dripping_parent(tmp_path, size)
    stream = PartialFile(JOB, str(tmp_path / "child.bin"), size, "00" * 32)
    stream.open()
    relay = {"host": "127.0.0.1", "port": port, "fingerprint": fingerprint, "job": JOB, "expires": 0,
             "ticket": "00" * 32}
    try:
        puller = gevent.spawn(pull, relay, "pi2", stream, stream.append, client_context(), stall_seconds=1.0)
        puller.join(8)
        still_pulling = not puller.ready()
        puller.kill()
        assert not still_pulling and puller.value is not None, \
            "still pulling at byte %d of %d after 8 s" % (stream.offset, size)
        assert "the relay sent" in puller.value and "expected" in puller.value, puller.value
    finally:
        stop()
        stream.close()


def test_strangers_holding_every_slot_do_not_keep_the_child_out(relay):
    """Ten addresses of the child's own /24 each hold their 4 connections in the TLS handshake
    or after it (all that the caps allow strangers): the child (127.0.0.1) still pulls."""
    strangers_hold_every_slot_and_the_child_pulls(*relay)


@pytest.mark.parametrize("listener", ["relay", "dual_stack_relay"])
def test_strangers_from_many_networks_holding_every_slot_do_not_keep_the_child_out(listener, request):
    """32 strangers, one in each of 32 /24s, the child's own among them, hold every slot: only
    the reserve for the child's address lets it in. On [::] the listener saw the child as
    ::ffff:127.0.0.1, not the 127.0.0.1 the master named: no reserve, the child refused."""
    port, key, digest = request.getfixturevalue(listener)
    held = []
    try:
        with gevent.Timeout(30):
            for n in list(range(1, 32)) + [0]:      # the child's /24 last: it is never the busiest
                held.append(gevent.socket.create_connection(("127.0.0.1", port),
                                                            source_address=("127.0.%d.2" % n, 0)))
            gevent.sleep(0.2)
        expires = int(time.time() * 1000) + 60000
        try:
            answer = ask(port, JOB, "pi2", digest, expires, relay_ticket.make(key, JOB, digest, "pi2", expires))
        except OSError as exc:
            answer = exc
        assert isinstance(answer, dict) and answer["type"] == "relay_ok", answer
    finally:
        for sock in held:
            sock.close()


def strangers_hold_every_slot_and_the_child_pulls(port, key, digest):
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    held = []
    try:
        with gevent.Timeout(30):
            for n in range(40):
                sock = gevent.socket.create_connection(("127.0.0.1", port),
                                                       source_address=("127.0.0.%d" % (2 + n % 10), 0))
                held.append(sock)
                if n % 2:
                    try:
                        held.append(context.wrap_socket(sock))
                    except OSError:
                        pass        # refused over the caps (one log line each): what the caps are for
            gevent.sleep(0.2)
        expires = int(time.time() * 1000) + 60000
        answer = ask(port, JOB, "pi2", digest, expires, relay_ticket.make(key, JOB, digest, "pi2", expires))
        assert answer["type"] == "relay_ok", answer
    finally:
        for sock in held:
            sock.close()


def straddling_parent(tmp_path, size, stall):
    """A compromised parent that keeps just clear of a floor checked only at the next byte:
    per round, FLOOR_BYTES - 1 bytes early in a window, then silence across the window's end
    and one byte after it (0.8 of a window later, within the child's stall timeout)."""
    from pcci.worker.relay_pull import FLOOR_BYTES

    def straddle(sock):
        sent = 0
        while sent < size:
            gevent.sleep(0.3 * stall)
            burst = min(FLOOR_BYTES - 1, size - sent)
            sock.sendall(b"x" * burst)
            sent += burst
            gevent.sleep(0.8 * stall)
            if sent < size:
                sock.sendall(b"x")
                sent += 1
    return compromised_parent(tmp_path, "straddler", size, straddle)


def test_a_parent_silent_across_each_windows_end_is_left_at_the_window_not_at_its_next_byte(tmp_path):
    """The floor (FLOOR_BYTES per stall window) was checked only when a byte came: a parent
    sending FLOOR_BYTES - 1 early in a window, nothing across its end, and one byte after it
    passed each check, so it kept its child at about half the floor (here 4 MiB per 2.2 s of
    2 s windows: the whole 16 MiB from the parent). Now the window is checked when it ends."""
    from pcci.worker.relay_pull import FLOOR_BYTES, client_context, pull
    size, stall = 4 * FLOOR_BYTES, 2.0
    port, fingerprint, stop = straddling_parent(tmp_path, size, stall)
    stream = PartialFile(JOB, str(tmp_path / "child.bin"), size, "00" * 32)
    stream.open()
    relay = {"host": "127.0.0.1", "port": port, "fingerprint": fingerprint, "job": JOB, "expires": 0,
             "ticket": "00" * 32}
    try:
        started = time.monotonic()
        puller = gevent.spawn(pull, relay, "pi2", stream, stream.append, client_context(), stall_seconds=stall)
        puller.join(20)
        took = time.monotonic() - started
        assert puller.ready()
        assert puller.value is not None and "the relay sent" in puller.value, (puller.value, stream.offset)
        assert stream.offset == FLOOR_BYTES - 1 and took < 2 * stall, (stream.offset, took)
    finally:
        puller.kill()
        stop()
        stream.close()


def test_a_parent_that_never_answers_the_tls_handshake_sends_its_child_to_the_master(tmp_path):
    """Attack that held: a parent that accepts and says nothing (no ServerHello) costs its
    child the connect and answer deadline (CONNECT_SECONDS + the stall window), no more."""
    from pcci.worker.relay_pull import CONNECT_SECONDS, client_context, pull
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held = []
    acceptor = gevent.spawn(lambda: held.append(listener.accept()[0]))
    stream = PartialFile(JOB, str(tmp_path / "child.bin"), 1024, "00" * 32)
    stream.open()
    relay = {"host": "127.0.0.1", "port": listener.getsockname()[1], "fingerprint": "sha256:" + "ab" * 32,
             "job": JOB, "expires": 0, "ticket": "00" * 32}
    try:
        started = time.monotonic()
        puller = gevent.spawn(pull, relay, "pi2", stream, stream.append, client_context(), stall_seconds=1.0)
        puller.join(CONNECT_SECONDS + 5)
        assert puller.ready() and puller.value is not None, "still waiting for the handshake"
        assert "timed out" in puller.value or "did not answer" in puller.value, puller.value
        assert time.monotonic() - started < CONNECT_SECONDS + 2 and held
    finally:
        acceptor.kill()
        for sock in held:
            sock.close()
        listener.close()
        stream.close()


def test_a_parents_refusal_cannot_write_lines_into_its_childs_log(tmp_path):
    """A compromised parent answers with an error whose code and message hold newlines: the
    child's log line quoting it (the reason pull returns) was cut into forged lines."""
    from pcci.worker.relay_pull import client_context, pull
    cert, cert_key = self_signed(str(tmp_path), "liar")
    context = tls.server_context(cert, cert_key)
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve():
        sock = context.wrap_socket(listener.accept()[0], server_side=True)
        relay_wire.read_message(sock)
        sock.sendall(relay_wire.error("busy\nERROR", "x\nCRITICAL pcci.worker.service: worker pi2 stopped\r"))
        sock.close()
    server = gevent.spawn(serve)
    stream = PartialFile(JOB, str(tmp_path / "child.bin"), 1024, "00" * 32)
    stream.open()
    relay = {"host": "127.0.0.1", "port": listener.getsockname()[1], "fingerprint": tls.file_fingerprint(cert),
             "job": JOB, "expires": 0, "ticket": "00" * 32}
    try:
        why = gevent.spawn(pull, relay, "pi2", stream, stream.append, client_context(), stall_seconds=1.0).get(
            timeout=10)
        assert why.startswith("the relay refused") and "worker pi2 stopped" in why, why
        assert "\n" not in why and "\r" not in why, why
    finally:
        server.kill()
        listener.close()
        stream.close()
