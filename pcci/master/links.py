"""The master's side of the worker port: handshake, name claims, and each worker's session.

Every connection gets one greenlet. Garbage, an oversized frame, an unknown message
type or a failed handshake closes that connection with one log line; the other
workers never notice.
"""

import logging

import gevent
from gevent.event import AsyncResult, Event

from .. import auth, protocol
from ..connection import Connection, tune_socket
from ..framing import ConnectionClosed, FrameError

log = logging.getLogger(__name__)

# How long an existing session has to answer a ping before a newcomer may take its name.
NAME_PROBE_SECONDS = 2.0


class WorkerSession:
    def __init__(self, connection, name, address):
        self.connection = connection
        self.name = name
        self.address = address
        self.ready = False          # dispatch only after the worker's sync
        self._kill_replies = {}
        self._pong = Event()

    def send(self, message):
        self.connection.send(message)

    def request_kill(self, job_id):
        reply = AsyncResult()
        self._kill_replies.setdefault(job_id, []).append(reply)
        self.send({"type": protocol.KILL, "job": job_id})
        return reply

    def kill_replied(self, message):
        for reply in self._kill_replies.pop(message.get("job"), []):
            reply.set(str(message.get("outcome")))

    def answers_ping(self, timeout):
        self._pong.clear()
        self.send({"type": protocol.PING})
        return self._pong.wait(timeout)

    def ponged(self):
        self._pong.set()

    def close(self):
        self.connection.close()


class Rejected(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class WorkerPort:
    """Handles one connection on the worker port from first byte to last."""

    def __init__(self, config, key, registry, pools, store, clock):
        self.config = config
        self.key = key
        self.registry = registry
        self.pools = pools
        self.store = store
        self.clock = clock

    def handle(self, sock, address):
        peer = "%s:%d" % address[:2]
        tune_socket(sock)
        connection = Connection(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES, peer)
        session = None
        try:
            name = self._handshake(connection, peer)
            connection.decoder.max_frame_bytes = self.config.max_frame_bytes
            session = WorkerSession(connection, name, address[0])
            self._claim(session)
            connection.send_now({"type": protocol.WELCOME, "version": protocol.VERSION,
                                 "heartbeatTimeout": self.config.heartbeat_timeout})
            self._serve(session)
        except Rejected as exc:
            log.warning("worker connection from %s refused: %s: %s", peer, exc.code, exc.message)
            try:
                connection.send_now(protocol.error(exc.code, exc.message), timeout=1.0)
            except ConnectionClosed:
                pass
        except FrameError as exc:
            who = session.name if session else peer
            log.warning("worker connection from %s closed: it sent garbage: %s", who, exc)
        except ConnectionClosed as exc:
            if session is not None:
                log.info("worker %s disconnected: %s", session.name, exc)
        except Exception:
            log.exception("worker connection from %s failed unexpectedly; closed", peer)
        finally:
            connection.close()
            if session is not None:
                self._release(session)

    def _handshake(self, connection, peer):
        timeout = self.config.handshake_timeout
        hello = protocol.require(connection.receive(timeout), protocol.HELLO, node=str, nonce=str)
        name = hello["node"]
        if not name or len(name) > 255 or "/" in name:
            raise Rejected("bad_node_name", "node name %r must be 1-255 characters without '/'" % name[:300])
        nonce = auth.new_nonce()
        connection.send_now({"type": protocol.CHALLENGE, "nonce": nonce,
                             "proof": auth.master_proof(self.key, hello["nonce"], nonce, name)})
        reply = connection.receive(timeout)
        if reply.get("type") == protocol.ERROR:
            raise Rejected("bad_key", "worker %r found the master's key proof wrong; "
                                      "the master and the worker have different cluster keys" % name)
        protocol.require(reply, protocol.AUTH, proof=str)
        if not auth.proofs_match(auth.worker_proof(self.key, nonce, hello["nonce"], name), reply["proof"]):
            raise Rejected("bad_key", "worker %r failed the cluster key check; "
                                      "is its cluster key the master's?" % name)
        return name

    def _claim(self, session):
        info = self.registry.get(session.name)
        holder = info.session if info else None
        if holder is not None:
            if holder.answers_ping(NAME_PROBE_SECONDS):
                raise Rejected("node_name_in_use", "another live worker at %s is already registered as %r; "
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

    def _remember(self, info):
        """Keep the worker in the store, off this connection's path."""
        gevent.spawn(self.store.save_worker, info.name, info.address, info.first_seen, info.last_seen, info.stats)

    def _serve(self, session):
        connection = session.connection
        while True:
            message = connection.receive(self.config.heartbeat_timeout)
            protocol.check_known(message, protocol.FROM_WORKER)
            kind = message["type"]
            now = self.clock()
            if kind == protocol.HEARTBEAT:
                stats = message.get("stats") if isinstance(message.get("stats"), dict) else None
                running = message.get("running") if isinstance(message.get("running"), list) else None
                self.registry.heard_from(session.name, now, stats, running)
                session.send({"type": protocol.PONG})
            elif kind == protocol.RESULT:
                protocol.require(message, protocol.RESULT, **protocol.RESULT_FIELDS)
                self.registry.heard_from(session.name, now)
                self.pools.on_result(session, message)
            elif kind == protocol.SYNC:
                protocol.require(message, protocol.SYNC, running=list)
                self.pools.on_sync(session, message["running"])
                if not session.ready:
                    session.ready = True
                    log.info("worker %s online from %s", session.name, session.address)
            elif kind == protocol.KILL_RESULT:
                session.kill_replied(message)
            elif kind == protocol.PING:
                session.send({"type": protocol.PONG})
            elif kind == protocol.PONG:
                session.ponged()
            elif kind == protocol.ERROR:
                log.warning("worker %s reported an error: %s", session.name, message.get("message"))
                return
            else:
                raise protocol.ProtocolError("unexpected %r message after the handshake" % kind)
