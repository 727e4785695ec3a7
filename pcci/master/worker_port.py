"""The master's side of the worker port: admission, TLS and the handshake.

Every link gets one greenlet until its worker has proved the key; then its link goes to
the port's ``workers`` (``worker_sessions``: an active master's sessions, which read
messages as they come and hold no greenlet while idle, or a standby's redirect). Garbage, an oversized frame, an unknown message type or a failed handshake
closes that link with one log line; the other workers never notice.
"""

import logging
import socket

import gevent
from gevent.server import StreamServer

from .. import handshake, protocol
from ..framing import ConnectionClosed, FrameError
from ..link import Link, TlsFailure, tune_socket
from ..protocol import HandshakeRefused
from ..clock import monotonic
from ..log_budget import BudgetedLog
from ..connection_limits import ConnectionLimits
from ..displacing import close_slot
from .memory_release import HANDSHAKES
from .result_spill import SpillingDecoder

log = logging.getLogger(__name__)


class TlsHandshakeFailed(Exception):
    """The peer's TLS handshake failed (garbage, or a plaintext worker)."""


class WorkerPort:
    """Handles one connection on the worker port from first byte to last.

    ``workers`` takes each authenticated link (``worker_sessions.ActiveWorkers`` or
    ``StandbyWorkers``); ``tls`` is the server context (None only when worker_tls is off) and
    ``cert_fingerprint`` the fingerprint of its certificate, which the handshake proofs cover
    ("" in plaintext)."""

    def __init__(self, settings, key, workers, tls=None, cert_fingerprint=""):
        self.config = settings
        self.key = key
        # Connections not yet authenticated: a stranger may hold only so many, and never all;
        # known workers' addresses have a reserve of their own.
        self.limits = ConnectionLimits(settings.max_handshakes, settings.max_handshakes_per_address,
                                       settings.max_handshakes_per_prefix, settings.max_handshakes_known)
        self._waiting = {}          # admitted socket -> its slot, until its greenlet runs
        self._known_addresses, self._known_at = frozenset(), float("-inf")
        self.notes = BudgetedLog(log, monotonic)
        self.tls = tls
        self.cert_fingerprint = cert_fingerprint
        self.workers = workers

    def admit(self, address, sock):
        """Whether a new connection from ``address`` may start its handshake; over a cap it may
        displace an idle one (closed here) or be refused. Lines budgeted: a flood cannot flood the log."""
        admission = self.limits.admit(address[0], self._known(address[0]))
        if admission.slot is None:
            self.notes.warning("refused", "worker connection from %s refused: %s (%d refused so far)", address[0],
                               admission.reason, self.limits.refused)
            return False
        admission.slot.holder = sock
        self._waiting[sock] = admission.slot
        if admission.evict is not None:
            self.notes.info("evicted", "worker connection from %s closed, still in its handshake, to make room for "
                            "%s (%d so far)", admission.evict.address, address[0], self.limits.evicted)
            close_slot(admission.evict)
        return True

    def _known(self, address):
        """Whether a worker this master knows last came from ``address`` (its reserve of slots);
        the set is made again at most once a second, not at every connection of a flood."""
        now = monotonic()
        if now - self._known_at > 1.0:
            self._known_addresses = self.workers.known_addresses()
            self._known_at = now
        return address in self._known_addresses

    def handle(self, sock, address):
        """One admitted connection (``WorkerServer`` asked ``admit``), until it closes."""
        slot = self._waiting.pop(sock, None)
        if slot is not None:
            if slot.evicted:        # displaced before this greenlet ran
                sock.close()
                return
            slot.holder = gevent.getcurrent()

        def authenticated():
            nonlocal slot
            if slot is not None:
                self.limits.release(slot)
                slot = None
                HANDSHAKES.reader_left()
        # One deadline for all that comes before the key proof -- TLS, hello, proof, and the
        # refusal and close if it fails -- not one per step.
        deadline = gevent.Timeout(self.config.handshake_timeout)
        deadline.start()
        try:
            self._handle(sock, address, authenticated, deadline)
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            self.notes.info("timeout", "worker connection from %s:%d closed: no handshake within %gs",
                            address[0], address[1], self.config.handshake_timeout)
        finally:
            deadline.close()
            authenticated()

    def _handle(self, sock, address, authenticated, deadline):
        peer = "%s:%d" % address[:2]
        tune_socket(sock)
        link = hello = None
        try:
            if self.tls is not None:
                sock = self._tls_accept(sock)
            link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES, peer,
                        decoder=SpillingDecoder(protocol.HANDSHAKE_MAX_FRAME_BYTES, self.config.state_dir))
            # Each read has the handshake timeout; the deadline around this call bounds them all.
            proof, hello = handshake.master_side(link, self.key, self.config.handshake_timeout,
                                                 self.cert_fingerprint)
            authenticated()
            deadline.close()        # its timer would be held for as long as the session lasts
            link.decoder.max_frame_bytes = self.config.max_frame_bytes
            # Sends to a worker that stopped reading give up after this (the reads have their own watch).
            link.sock.settimeout(self.config.heartbeat_timeout)
            self.workers.serve(link, address[0], handshake.welcome(proof, self.config.heartbeat_timeout), hello,
                               self._ended)
            link = sock = None      # the session has the link now: it is closed when the session ends
        except HandshakeRefused as exc:
            if exc.code == "not_leader":
                log.debug("worker connection from %s refused: %s: %s", peer, exc.code, exc.message)
            else:
                self.notes.warning("handshake " + exc.code, "worker connection from %s refused: %s: %s", peer,
                                   exc.code, exc.message)
            try:
                link.send_now(protocol.error(exc.code, exc.message, exc.leader), timeout=1.0)
            except ConnectionClosed:
                pass
        except TlsHandshakeFailed as exc:
            self.notes.warning("tls", "worker connection from %s refused: TLS handshake failed: %s (a plaintext "
                               "worker? every worker needs master_tls: true, the default)", peer, exc)
        except Exception as exc:
            self._log_end(hello.name if hello else peer, exc, hello is not None)
        finally:
            if link is not None:
                link.close()
            elif sock is not None:
                sock.close()

    def _ended(self, link, name, exc):
        """A worker's session ended (``worker_sessions``): one line saying why, and its link closed."""
        if exc is not None:
            self._log_end(name, exc, True)
        link.close()

    def _log_end(self, who, exc, authenticated):
        """Why a link ended: lines a stranger could cause are budgeted."""
        if isinstance(exc, FrameError):
            self.notes.warning("garbage", "worker connection from %s closed: it sent garbage: %s", who, exc)
        elif isinstance(exc, TlsFailure):
            self.notes.warning("tls", "worker connection from %s closed: %s", who, exc)
        elif isinstance(exc, ConnectionClosed):
            if authenticated:
                log.info("worker %s disconnected: %s", who, exc)
        else:
            log.error("worker connection from %s failed unexpectedly; closed", who, exc_info=exc)

    def _tls_accept(self, sock):
        """The TLS handshake (the caller's deadline bounds it); TlsHandshakeFailed when it fails."""
        try:
            tls_sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            raise TlsHandshakeFailed(getattr(exc, "reason", None) or exc)
        try:
            tls_sock.do_handshake()
        except OSError as exc:   # ssl.SSLError is an OSError
            tls_sock.close()
            raise TlsHandshakeFailed(getattr(exc, "reason", None) or exc)
        except BaseException:    # the deadline, or displaced by a newcomer
            tls_sock.close()
            raise
        tls_sock.settimeout(None)
        return tls_sock


class WorkerServer(StreamServer):
    """The worker port's listener: a connection over the handshake caps is closed in the
    accept loop, before it costs a greenlet."""

    def __init__(self, listener, port, **kwargs):
        super().__init__(listener, port.handle, **kwargs)
        self.port = port

    @staticmethod
    def listener_for(address, backlog):
        """A bound, listening socket, for a server that must know its port before it starts."""
        return StreamServer.get_listener(address, backlog=backlog, family=socket.AF_INET6 if ":" in address[0] else socket.AF_INET)

    def serve(self, port):
        """Hand the connections from now on to ``port`` (a standby's port to the active one's)."""
        self.port = port
        self.set_handle(port.handle)

    def do_handle(self, sock, address):
        if not self.port.admit(address, sock):
            sock.close()
            return
        try:
            super().do_handle(sock, address)
        except BaseException:
            sock.close()
            raise

    def do_close(self, sock, *args):
        """Not when the handler returns: a session outlives it; the port closes every socket itself."""
