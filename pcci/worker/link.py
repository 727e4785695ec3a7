"""The worker's link to the master: dial, prove both sides hold the key, then serve.

One session per TCP connection. After the handshake the worker sends every result
its spool holds, then a ``sync`` naming the jobs still running, so the master learns
what happened while the link was down. When the link drops the worker waits a
jittered, growing delay and dials again.
"""

import logging
import random
import socket

import gevent
import gevent.socket

from .. import auth, protocol
from ..backoff import reconnect_delay
from ..connection import Connection, tune_socket
from ..framing import ConnectionClosed, FrameError
from . import stats

log = logging.getLogger(__name__)

# A session that lasted this long resets the backoff.
STABLE_SESSION_SECONDS = 10.0


class Refused(Exception):
    """The master (or something pretending to be it) refused or failed the handshake."""


def open_tcp(host, port, timeout):
    """Connect; an IP address skips name resolution, and with it gevent's resolver thread
    pool (a native thread and ~1 MB a worker that has no use for it)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        sock = gevent.socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError:
            sock.close()
            raise
        return sock
    return gevent.socket.create_connection((host, port), timeout=timeout)


def tls_context(cafile):
    """A verifying client context. gevent's own SSLContext: the stdlib's would block the hub.

    Imported here, not at the top: ssl adds ~4 MB to every worker that does not use TLS.
    """
    import ssl
    from gevent import ssl as gevent_ssl
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        context.load_verify_locations(cafile)
    else:
        context.load_default_certs()
    return context


class MasterLink:
    def __init__(self, config, key, node, runner, spool):
        self.config = config
        self.key = key
        self.node = node
        self.runner = runner
        self.spool = spool
        self.connection = None

    # -- called by the runner's completion path -------------------------------------
    def deliver(self, result):
        self.spool.save(result)
        if self.connection is not None:
            self.connection.send(result)

    # -- dialing ---------------------------------------------------------------------
    def run(self, stopping):
        attempt = 0
        while not stopping.is_set():
            started = gevent.get_hub().loop.now()
            try:
                self._session()
            except Refused as exc:
                log.error("cannot register with master %s: %s", self._address(), exc)
            except (ConnectionClosed, OSError, FrameError) as exc:  # ssl.SSLError is an OSError
                log.warning("link to master %s down: %s", self._address(), exc)
            except Exception:
                # A bug must cost one session, never the worker's only link to its master.
                log.exception("link to master %s failed unexpectedly; reconnecting", self._address())
            finally:
                self.connection = None
            if gevent.get_hub().loop.now() - started > STABLE_SESSION_SECONDS:
                attempt = 0
            delay = reconnect_delay(attempt, self.config.reconnect_min, self.config.reconnect_max, random.random())
            attempt += 1
            log.info("reconnecting to %s in %.1fs", self._address(), delay)
            stopping.wait(delay)

    def _address(self):
        return "%s:%d" % (self.config.master_host, self.config.master_port)

    def _dial(self):
        sock = open_tcp(self.config.master_host, self.config.master_port, timeout=10)
        tune_socket(sock)
        if self.config.master_tls:
            sock = tls_context(self.config.master_ca_file).wrap_socket(
                sock, server_hostname=self.config.master_host)
        sock.settimeout(None)
        return sock

    def _session(self):
        connection = Connection(self._dial(), protocol.HANDSHAKE_MAX_FRAME_BYTES, self._address())
        try:
            welcome = self._handshake(connection)
            connection.decoder.max_frame_bytes = self.config.max_frame_bytes
            self.connection = connection
            log.info("registered with master %s as %s", self._address(), self.node)
            for result in self.spool.pending():
                connection.send(result)
            connection.send({"type": protocol.SYNC, "running": self.runner.running_ids()})
            beat = gevent.spawn(self._heartbeats, connection)
            try:
                self._serve(connection, welcome)
            finally:
                beat.kill()
        finally:
            connection.close()

    def _handshake(self, connection):
        timeout = self.config.link_timeout
        nonce = auth.new_nonce()
        connection.send_now({"type": protocol.HELLO, "node": self.node, "nonce": nonce,
                             "version": protocol.VERSION})
        challenge = connection.receive(timeout)
        if challenge.get("type") == protocol.ERROR:
            raise Refused("%s: %s" % (challenge.get("code"), challenge.get("message")))
        protocol.require(challenge, protocol.CHALLENGE, nonce=str, proof=str)
        expected = auth.master_proof(self.key, nonce, challenge["nonce"], self.node)
        if not auth.proofs_match(expected, challenge["proof"]):
            try:
                connection.send_now(protocol.error("bad_key", "the master's key proof is wrong"), timeout=1.0)
            except ConnectionClosed:
                pass
            raise Refused("the master did not prove it holds the cluster key; refusing to take orders from it")
        connection.send_now({"type": protocol.AUTH,
                             "proof": auth.worker_proof(self.key, challenge["nonce"], nonce, self.node)})
        welcome = connection.receive(timeout)
        if welcome.get("type") == protocol.ERROR:
            raise Refused("%s: %s" % (welcome.get("code"), welcome.get("message")))
        return protocol.require(welcome, protocol.WELCOME)

    def _heartbeats(self, connection):
        while not connection.closed:
            message = {"type": protocol.HEARTBEAT, "stats": stats.collect(),
                       "running": self.runner.running_ids()}
            connection.send(message)
            gevent.sleep(self.config.heartbeat_interval)

    def _serve(self, connection, welcome):
        while True:
            message = protocol.check_known(connection.receive(self.config.link_timeout), protocol.FROM_MASTER)
            kind = message["type"]
            if kind == protocol.RUN:
                protocol.require(message, protocol.RUN, **protocol.RUN_FIELDS)
                if self.spool.holds(message["job"]):
                    continue   # already ran; its result is on its way
                self.runner.start(message["job"], message["cmd"], message.get("timeout"),
                                  message.get("env"), message.get("cwd"))
            elif kind == protocol.KILL:
                protocol.require(message, protocol.KILL, job=str)
                outcome = self.runner.kill(message["job"])
                connection.send({"type": protocol.KILL_RESULT, "job": message["job"], "outcome": outcome})
            elif kind == protocol.ACK:
                protocol.require(message, protocol.ACK, job=str)
                self.spool.remove(message["job"])
            elif kind == protocol.PING:
                connection.send({"type": protocol.PONG})
            elif kind == protocol.ERROR:
                raise Refused("%s: %s" % (message.get("code"), message.get("message")))
