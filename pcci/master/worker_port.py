"""The master's side of the worker port: handshake, name claims, and each worker's session.

A session is one authenticated link from one worker. Every link gets one greenlet.
Garbage, an oversized frame, an unknown message type or a failed handshake closes
that link with one log line; the other workers never notice.
"""

import logging
import socket

import gevent
from gevent.event import AsyncResult, Event
from gevent.server import StreamServer

from .. import auth, protocol
from ..framing import ConnectionClosed, FrameError
from ..link import Link, TlsFailure, tune_socket
from ..protocol import HandshakeRefused
from ..states import WORKER_KILL_OUTCOMES, KillOutcome
from ..clock import monotonic
from ..log_budget import BudgetedLog
from ..targets import check_labels
from . import worker_stats
from .connection_limits import ConnectionLimits
from .displacing import close_slot

log = logging.getLogger(__name__)

# How long an existing session has to answer a ping before a newcomer may take its name.
NAME_PROBE_SECONDS = 2.0


def said(value, limit=300):
    """Words a worker sent, cut at ``limit`` characters for one log line (a frame may
    carry 16 MiB of them); pcci.logs escapes their control characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class TlsHandshakeFailed(Exception):
    """The peer's TLS handshake failed (garbage, or a plaintext worker)."""


class WorkerSession:
    def __init__(self, link, name, address, features=frozenset(), labels=None, users=None, instance=None):
        self.link = link
        self.name = name
        self.instance = instance    # the worker process (protocol.instance), None from an older worker
        self.labels = labels or {}
        self.users = users or []      # the users its jobs may run as (its own first)
        self.address = address
        self.features = frozenset(features)
        self.live_output = protocol.LIVE_OUTPUT in features   # it sends output while jobs run
        self.ready = False          # dispatch only after the worker's sync
        self.complaints = worker_stats.Complaints()     # when its malformed stats are logged
        self._kill_replies = {}
        self._pong = Event()

    def send(self, message):
        self.link.send(message)

    def request_kill(self, job_id):
        reply = AsyncResult()
        self._kill_replies.setdefault(job_id, []).append(reply)
        self.send({"type": protocol.KILL, "job": job_id})
        return reply

    def kill_replied(self, message):
        protocol.require(message, protocol.KILL_RESULT, job=str, outcome=str)
        if message["outcome"] not in {outcome.value for outcome in WORKER_KILL_OUTCOMES}:
            raise protocol.ProtocolError("kill_result with unknown outcome %r" % message["outcome"][:40])
        for reply in self._kill_replies.pop(message["job"], []):
            reply.set(KillOutcome(message["outcome"]))

    def answers_ping(self, timeout):
        self._pong.clear()
        self.send({"type": protocol.PING})
        return self._pong.wait(timeout)

    def ponged(self):
        self._pong.set()

    def close(self):
        self.link.close()


class WorkerPort:
    """Handles one connection on the worker port from first byte to last.

    ``tls`` is the server context (None only when worker_tls is off) and ``cert_fingerprint``
    the fingerprint of its certificate, which the handshake proofs cover ("" in plaintext)."""

    def __init__(self, settings, key, registry, pools, persister, clock, tls=None, cert_fingerprint="",
                 events=None, standby=None):
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
        self.registry = registry
        self.pools = pools
        self.persister = persister
        self.clock = clock
        self.events = events        # cluster_events.ClusterEvents: workers coming, going, reporting
        # On a standby master: a callable giving the active master's worker address (or
        # None); every worker that proves the key is told ``not_leader`` and where to go.
        self.standby = standby

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
        if self.registry is None:
            return False
        now = monotonic()
        if now - self._known_at > 1.0:
            self._known_addresses = {info.address for info in self.registry.workers.values() if info.address}
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
            deadline.cancel()
            authenticated()

    def _handle(self, sock, address, authenticated, deadline):
        peer = "%s:%d" % address[:2]
        tune_socket(sock)
        link = session = None
        try:
            if self.tls is not None:
                sock = self._tls_accept(sock)
            link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES, peer)
            name, proof, features, labels, users, instance = self._handshake(link, peer)
            authenticated()
            deadline.cancel()
            if self.standby is not None:
                leader = self.standby()
                raise HandshakeRefused("not_leader", "this master is a standby; the active master is %s"
                                       % (leader or "not known yet (an election is under way)"), leader=leader)
            link.decoder.max_frame_bytes = self.config.max_frame_bytes
            session = WorkerSession(link, name, address[0], features, labels, users, instance)
            self._claim(session)
            link.send_now({"type": protocol.WELCOME, "version": protocol.VERSION, "proof": proof,
                           "heartbeatTimeout": self.config.heartbeat_timeout, "features": list(protocol.FEATURES)})
            self._serve(session)
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
        except FrameError as exc:
            who = session.name if session else peer
            self.notes.warning("garbage", "worker connection from %s closed: it sent garbage: %s", who, exc)
        except TlsHandshakeFailed as exc:
            self.notes.warning("tls", "worker connection from %s refused: TLS handshake failed: %s (a plaintext "
                               "worker? every worker needs master_tls: true, the default)", peer, exc)
        except TlsFailure as exc:
            who = session.name if session else peer
            self.notes.warning("tls", "worker connection from %s closed: %s", who, exc)
        except ConnectionClosed as exc:
            if session is not None:
                log.info("worker %s disconnected: %s", session.name, exc)
        except Exception:
            log.exception("worker connection from %s failed unexpectedly; closed", peer)
        finally:
            if link is not None:
                link.close()
            else:
                sock.close()
            if session is not None:
                self._release(session)

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

    def _handshake(self, link, peer):
        timeout = self.config.handshake_timeout     # each read; the caller's deadline bounds them all
        hello = protocol.require(link.receive(timeout), protocol.HELLO, node=str, nonce=str)
        name = hello["node"]
        if hello.get("version") != protocol.VERSION:
            raise HandshakeRefused("version_mismatch", "worker %r speaks protocol version %r, this master %d; "
                                   "install the same PCCI release on both" % (name[:300], hello.get("version"),
                                                                              protocol.VERSION))
        if not name or len(name) > 255 or "/" in name or not name.isprintable() or not protocol.storable(name):
            raise HandshakeRefused("bad_node_name", "node name %r must be 1-255 printable characters without '/'"
                                   % name[:300])
        labels = hello.get("labels") or {}
        problems = check_labels(labels)
        if problems:
            raise HandshakeRefused("bad_labels", "worker %r: %s" % (name, "; ".join(problems)[:500]))
        nonce = auth.new_nonce()
        link.send_now({"type": protocol.CHALLENGE, "nonce": nonce})
        reply = link.receive(timeout)
        if reply.get("type") == protocol.ERROR:
            raise HandshakeRefused(said(reply.get("code"), 40), "worker %r gave up the handshake: %s"
                                   % (name, said(reply.get("message"))))
        protocol.require(reply, protocol.AUTH, proof=str)
        expected = auth.worker_proof(self.key, nonce, hello["nonce"], name, self.cert_fingerprint)
        if not auth.proofs_match(expected, reply["proof"]):
            raise HandshakeRefused("bad_key", "worker %r failed the cluster key check; is its cluster key the "
                                   "master's, and is nothing between them presenting another certificate?" % name)
        return (name, auth.master_proof(self.key, hello["nonce"], nonce, name, self.cert_fingerprint),
                protocol.features(hello), labels, protocol.user_names(hello), protocol.instance(hello))

    def _claim(self, session):
        info = self.registry.get(session.name)
        holder = info.session if info else None
        if holder is not None:
            if holder.answers_ping(NAME_PROBE_SECONDS):
                raise HandshakeRefused("node_name_in_use", "another live worker at %s is already registered as %r; "
                               "give each node its own node_name" % (holder.address, session.name))
            log.warning("worker %s: the old connection from %s did not answer; replacing it",
                        session.name, holder.address)
            holder.close()
        self._remember(self.registry.attach(session, self.clock()))

    def _release(self, session):
        info = self.registry.detach(session, self.clock())
        if info is not None:
            log.info("worker %s offline", session.name)
            self._remember(info)
            self._changed(session.name)

    def _changed(self, name):
        if self.events is not None:
            self.events.worker_changed(name)

    def _remember(self, info):
        """Keep the worker in the store, through the persister with its retries."""
        self.persister.mark_worker(info.record())

    @staticmethod
    def _stats_of(session, heartbeat, now):
        """The heartbeat's stats as ``worker_stats`` keeps them (None keeps the last ones);
        the fields it dropped are logged, at most once per interval for each worker."""
        stats, dropped = worker_stats.clean(heartbeat.get("stats"))
        if dropped:
            unlogged = session.complaints.due(now)
            if unlogged is not None:
                log.warning("worker %s sent malformed stats: ignored %s%s (see docs/api.md, stats)", session.name,
                            ", ".join(dropped), "; %d more heartbeats with malformed stats since the last such line"
                            % unlogged if unlogged else "")
        return stats

    def _serve(self, session):
        link = session.link
        while True:
            message = link.receive(self.config.heartbeat_timeout)
            protocol.check_known(message, protocol.FROM_WORKER)
            kind = message["type"]
            now = self.clock()
            if kind == protocol.HEARTBEAT:
                self.registry.heard_from(session.name, now, self._stats_of(session, message, now),
                                         protocol.job_ids(message, "running"), protocol.job_ids(message, "queued"))
                session.send({"type": protocol.PONG})
                self._changed(session.name)
            elif kind == protocol.OUTPUT:
                self.pools.on_output(session, protocol.check_output(message))
            elif kind == protocol.RESULT:
                result, problem = protocol.check_result(message)
                if result["job"].partition("/")[2] != session.name:
                    raise protocol.ProtocolError("worker %s sent a result for %s" % (session.name, result["job"]))
                if problem:
                    log.warning("worker %s sent an invalid result for %s (%s); the job is marked failed",
                                session.name, result["job"], problem)
                self.registry.heard_from(session.name, now)
                ended = self.registry.job_ended(session.name, result["job"])
                self.pools.on_result(session, result)
                if ended:
                    self._changed(session.name)
            elif kind == protocol.SYNC:
                running = protocol.job_ids(message, "running")
                if running is None:
                    raise protocol.ProtocolError("sync without a list of running job ids")
                coming_online = not session.ready
                # Ready first: the sync may start jobs that waited for this worker (offline
                # queueing, a rolling batch); its lost jobs are settled in the same call.
                session.ready = True
                self.pools.on_sync(session, running, self.registry.resumes(session))
                changed = self.registry.synced(session)
                if changed is not None:
                    # Saved after the sync's own changes (the jobs it gave up on), in the same
                    # transaction or a later one: a restarted master never takes a process
                    # for the one that synced last before those are on disk.
                    self._remember(changed)
                if coming_online:
                    log.info("worker %s online from %s", session.name, session.address)
                    self._changed(session.name)
            elif kind == protocol.KILL_RESULT:
                session.kill_replied(message)
            elif kind == protocol.PING:
                session.send({"type": protocol.PONG})
            elif kind == protocol.PONG:
                session.ponged()
            elif kind == protocol.ERROR:
                log.warning("worker %s reported an error: %s", session.name, said(message.get("message")))
                return
            else:
                raise protocol.ProtocolError("unexpected %r message after the handshake" % kind)



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
        super().do_handle(sock, address)
