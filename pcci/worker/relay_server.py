"""The worker's relay listener (``relay_listen``, off by default): children of a relayed
copy pull its bytes from here as this worker writes them (pcci.relay_wire).

What a stranger can do to it, and what each limit costs a trusted child:

- It serves only ``RelaySources`` (copies the master told this worker to pass on), by job
  id, to a child with a ticket the master made for that child, copy, file and time
  (pcci.relay_ticket); a request never names a path.
- Before a request is authenticated a connection holds a slot of ``ConnectionLimits``
  (per address, per /24, in all), and has ``PRE_AUTH_SECONDS`` for its TLS handshake and
  its request. The addresses of this worker's current children (``relayChildren``) have
  a reserve of slots no stranger can fill or take, so a flood from elsewhere does not keep
  them out; and whatever happens here, a child that cannot pull goes on from the master,
  so the worst any flood can do is make a copy as slow as without relays.
- An authenticated connection leaves the pre-auth slots; at most ``MAX_SERVING`` are
  served at once, one per (copy, child) (a child that dials again replaces its old one),
  each closed when its child reads nothing for ``SEND_SECONDS`` or the copy's bytes stop
  coming for ``IDLE_SECONDS``.
- Every line a stranger can cause (a refusal, a connection closed before its request) is
  budgeted (``log_budget``), as on the master's ports: a dial loop cannot flood the log.
"""

import logging
import os
import socket

import time

import gevent
import gevent.socket

from .. import relay_ticket, relay_wire
from ..clock import wall_ms
from ..framing import ConnectionClosed, FrameError
from ..link import tune_socket

log = logging.getLogger(__name__)

PRE_AUTH_SECONDS = 10.0
SEND_SECONDS = 30.0
IDLE_SECONDS = 60.0
PIECE_BYTES = 256 * 1024
MAX_PRE_AUTH = 32
MAX_PRE_AUTH_PER_ADDRESS = 4
MAX_PRE_AUTH_PER_PREFIX = 16
CHILD_RESERVE = 32
MAX_SERVING = 64


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class RelayServer:
    def __init__(self, address, context, fingerprint, sources, node, now_ms=wall_ms, advertise=None):
        self.address = address          # (host, port) to bind
        # (host, port) other workers dial instead (relay_advertise; port 0: the listener's),
        # which the master takes only where its relay_networks allow (pcci.master.relay_address)
        self.advertise = advertise
        self.context = context          # tls.server_context of this worker's own certificate
        self.fingerprint = fingerprint
        self.sources = sources          # relay_sources.RelaySources
        self.node = node
        self.now_ms = now_ms
        # The worker port's limits, pure; imported only by a worker that relays (it brings
        # typing, ~1 MB, which a worker does not load otherwise: tests/test_worker_footprint.py).
        from ..connection_limits import ConnectionLimits
        from ..displacing import close_slot
        from ..log_budget import BudgetedLog
        from ..client_ip import client_ip
        self._close_slot = close_slot
        self._client_ip = client_ip
        self.notes = BudgetedLog(log, time.monotonic)
        self.limits = ConnectionLimits(MAX_PRE_AUTH, MAX_PRE_AUTH_PER_ADDRESS, MAX_PRE_AUTH_PER_PREFIX,
                                       reserve=CHILD_RESERVE)
        self.serving = {}               # (job, child) -> its socket
        self.listener = None
        self.port = None
        self._acceptor = None

    def start(self):
        host, port = self.address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = gevent.socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        self.listener, self.port = listener, listener.getsockname()[1]
        self._acceptor = gevent.spawn(self._accept)
        endpoint = self.endpoint()
        log.info("relay listener on %s:%d (certificate %s)%s", host, self.port, self.fingerprint,
                 ", advertised as %s:%d" % (endpoint["host"], endpoint["port"]) if "host" in endpoint else "")
        return self

    def endpoint(self):
        """What the hello says about this listener (protocol.relay_endpoint)."""
        if self.advertise is None:
            return {"port": self.port, "fingerprint": self.fingerprint}
        host, port = self.advertise
        return {"host": host, "port": port or self.port, "fingerprint": self.fingerprint}

    def close(self):
        if self._acceptor is not None:
            self._acceptor.kill()
        if self.listener is not None:
            self.listener.close()
        for sock in list(self.serving.values()):
            sock.close()
        self.sources.close()

    def _accept(self):
        while True:
            try:
                sock, address = self.listener.accept()
            except OSError as exc:
                self.notes.warning("relay accept", "relay listener: accept failed: %s", exc)
                gevent.sleep(0.1)
                continue
            # As the master names children's addresses: a listener on [::] sees ::ffff:a.b.c.d.
            peer = str(self._client_ip(address[0]) or address[0])
            admission = self.limits.admit(peer, self.sources.is_child_address(peer))
            if admission.evict is not None:
                self._close_slot(admission.evict)
            if admission.slot is None:
                self.notes.warning("relay full", "relay: connection from %s refused: %s", peer,
                                   admission.reason)
                sock.close()
                continue
            admission.slot.holder = sock
            gevent.spawn(self._serve, sock, peer, admission.slot)

    def _serve(self, raw, address, slot):
        tls = None
        key = None
        if slot.evicted:        # displaced before this greenlet ran
            raw.close()
            return
        # Displacing a connection kills this greenlet, whose finally closes the socket: closing
        # ``raw`` would not, once the TLS socket has taken its file descriptor.
        slot.holder = gevent.getcurrent()
        try:
            try:
                with gevent.Timeout(PRE_AUTH_SECONDS):
                    tune_socket(raw)
                    tls = self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                    tls.do_handshake()
                    request = relay_wire.read_message(tls)
                    source, child = self._authorize(request, address)
            except gevent.Timeout:
                self.notes.warning("relay slow", "relay: %s sent no valid request within %d s; closed", address,
                                   PRE_AUTH_SECONDS)
                return
            except gevent.GreenletExit:     # displacing.Displaced
                self.notes.info("relay displaced", "relay: a connection from %s, still before its request, closed "
                                "to make room for another", address)
                return
            except Refused as exc:
                self.notes.warning("relay refused", "relay: refused %s", exc)
                self._answer(tls, relay_wire.error(exc.code, str(exc)))
                return
            except (FrameError, ConnectionClosed, OSError) as exc:
                self.notes.warning("relay garbage", "relay: connection from %s closed before a valid request: %s",
                                   address, exc)
                return
            finally:
                self.limits.release(slot)
            key = (source.job, child)
            old = self.serving.pop(key, None)
            if old is not None:
                old.close()         # the child dialed again: its old connection is of no use
            if len(self.serving) >= MAX_SERVING:
                log.warning("relay: refused %s for copy %s: %d children are served already", child, source.job,
                            MAX_SERVING)
                self._answer(tls, relay_wire.error("busy", "this relay serves %d children already" % MAX_SERVING))
                key = None
                return
            self.serving[key] = tls
            self._send_file(tls, source, request["offset"], child)
        finally:
            if key is not None and self.serving.get(key) is tls:
                del self.serving[key]
            (tls or raw).close()

    def _authorize(self, request, address):
        """(source, child name) for a request that may be served; Refused otherwise."""
        if request.get("type") != relay_wire.PULL:
            raise Refused("bad_request", "%s sent a %r frame, not a relay_pull" % (address, request["type"][:40]))
        problem = relay_wire.fields_problem(request, relay_wire.PULL_FIELDS)
        if problem:
            raise Refused("bad_request", "%s: relay_pull: %s" % (address, problem))
        job, child = request["job"], request["child"]
        # A child may dial before this worker's copy_begin has arrived: wait for it a little.
        source = self.sources.get(job) or self.sources.wait_for(job, PRE_AUTH_SECONDS / 2)
        if source is None:
            raise Refused("unknown_copy", "%r at %s for copy %r: not a copy this worker relays"
                          % (child[:100], address, job[:200]))
        problem = relay_ticket.problem(source.key, job, request["sha256"], child, request["expires"],
                                       request["ticket"], self.now_ms())
        if problem is None and request["sha256"] != source.sha256:
            problem = "a ticket for another file"
        if problem is not None:
            raise Refused("bad_ticket", "%r at %s for copy %s: %s" % (child[:100], address, job[:200], problem))
        if not 0 <= request["offset"] <= source.size:
            raise Refused("bad_request", "%r at %s for copy %s: offset %d outside its %d bytes"
                          % (child[:100], address, job[:200], request["offset"], source.size))
        return source, child

    def _send_file(self, tls, source, offset, child):
        """The file's bytes from ``offset`` as they are written here; returns when all are sent,
        the copy is withdrawn, or the child or the copy stalls."""
        if source.withdrawn:
            return
        fd = os.dup(source.fd)
        try:
            with gevent.Timeout(SEND_SECONDS):
                tls.sendall(relay_wire.ok(source.size))
            while offset < source.size and not source.withdrawn:
                changed = source.changed
                available = source.offset
                if offset >= available:
                    if not changed.wait(IDLE_SECONDS):
                        log.warning("relay: copy %s got no byte for %d s; closed %s's connection", source.job,
                                    IDLE_SECONDS, child)
                        return
                    continue
                data = os.pread(fd, min(PIECE_BYTES, available - offset), offset)
                if not data:
                    return
                with gevent.Timeout(SEND_SECONDS):
                    tls.sendall(data)
                offset += len(data)
        except gevent.Timeout:
            log.warning("relay: %s read nothing of copy %s for %d s; closed", child, source.job, SEND_SECONDS)
        except OSError as exc:
            log.info("relay: %s's connection for copy %s closed: %s", child, source.job, exc)
        finally:
            os.close(fd)

    @staticmethod
    def _answer(tls, frame):
        if tls is None:
            return
        try:
            with gevent.Timeout(1.0):
                tls.sendall(frame)
        except (gevent.Timeout, OSError):
            pass
