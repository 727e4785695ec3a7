"""The worker's link to the master: dial, prove both sides hold the key, then serve.

One session per TCP connection. After the handshake the worker sends every result
its spool holds, then a ``sync`` naming the jobs still running, so the master learns
what happened while the link was down. When the link drops the worker waits a
jittered, growing delay and dials again.
"""

import base64
import logging
import random
import secrets
import socket
import ssl

import gevent
import gevent.socket

from .. import handshake, protocol, tls
from ..clock import monotonic
from ..framing import ConnectionClosed, FrameError
from ..link import Link, TlsFailure, tune_socket
from ..protocol import HandshakeRefused
from . import stats
from .backoff import MasterRotation

log = logging.getLogger(__name__)

# A session that lasted this long resets the backoff.
STABLE_SESSION_SECONDS = 10.0
CONNECT_SECONDS = 10.0


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


class MasterLink:
    def __init__(self, settings, key, node, runner, outbox, live_channel=None, copies=None, fetches=None,
                 relay=None):
        self.config = settings
        self.relay = relay              # the relay listener's {port, fingerprint}, said in the hello
        self.copies = copies            # copy_streams.CopyStreams: files sent in chunks
        self.fetches = fetches          # fetch_streams.FetchStreams: files read here for the master
        self.key = key
        self.node = node
        self.runner = runner
        self.outbox = outbox
        self.live_channel = live_channel
        self._tls = None
        self.rotation = None
        # This process's name for itself: the master sends again the jobs it sent to this
        # instance that the sync does not name (they never arrived), and gives up on those
        # it sent to an earlier one (they may have run).
        self.instance = secrets.token_hex(8)
        self.labels = settings.labels
        self._link = None               # the session's link, while there is one
        self._raw_chunks = False        # that master named protocol.RAW_CHUNKS: fetches send raw blobs

    # -- dialing ---------------------------------------------------------------------
    def run(self, stopping):
        rotation = MasterRotation(self.config_masters(), self.config.reconnect_min, self.config.reconnect_max)
        self.rotation = rotation
        while not stopping.is_set():
            started = monotonic()
            not_leader, leader = False, None
            try:
                self._session()
            except HandshakeRefused as exc:
                if exc.code == "not_leader":
                    not_leader, leader = True, exc.leader
                    log.info("master %s is a standby; the active master is %s", self._address(),
                             exc.leader or "not known yet")
                else:
                    log.error("cannot register with master %s: %s", self._address(), exc)
            except TlsFailure as exc:
                log.warning("link to master %s closed: %s", self._address(), exc)
            except ssl.SSLError as exc:
                log.warning("link to master %s: TLS handshake failed (does the master have worker_tls on, "
                            "the default?): %s", self._address(), exc.reason or exc)
            except (ConnectionClosed, OSError, FrameError) as exc:
                log.warning("link to master %s down: %s", self._address(), exc)
            except Exception:
                # A bug must cost one session, never the worker's only link to its master.
                log.exception("link to master %s failed unexpectedly; reconnecting", self._address())
            finally:
                self.outbox.detach()
                if self.live_channel is not None:
                    self.live_channel.detach()
            delay = rotation.after(monotonic() - started > STABLE_SESSION_SECONDS, random.random(),
                                   not_leader, leader)
            log.info("connecting to %s in %.1fs", self._address(), delay)
            stopping.wait(delay)

    def relabel(self, labels):
        """New labels (SIGHUP): the hello carries them, so the link is dialed again to say
        them; running jobs go on and their results wait in the outbox meanwhile."""
        if labels == self.labels:
            return
        self.labels = labels
        log.info("labels changed to %s: reconnecting to the master to announce them",
                 ", ".join("%s=%s" % item for item in sorted(labels.items())) or "none")
        if self._link is not None:
            self._link.close()

    def config_masters(self):
        """(host, port) of each master to try, in order: master_hosts, else master_host."""
        if self.config.master_hosts:
            return [(host, port or self.config.master_port) for host, port in self.config.master_hosts]
        return [(self.config.master_host, self.config.master_port)]

    def _address(self):
        host, port = self.rotation.current if self.rotation is not None else self.config_masters()[0]
        return "%s:%d" % (host, port)

    def _dial(self):
        """A connected socket and the fingerprint of the master's certificate ("" in plaintext)."""
        host, port = self.rotation.current
        # A master behind a cut link does not refuse, it never answers: give up on it within
        # the link timeout, so the next master is tried soon.
        sock = open_tcp(host, port, timeout=min(CONNECT_SECONDS, self.config.link_timeout))
        tune_socket(sock)
        if not self.config.master_tls:
            sock.settimeout(None)
            return sock, ""
        if self._tls is None:
            self._tls = tls.link_client_context(self.config.master_ca_file)
        try:
            sock = self._tls.wrap_socket(sock, server_hostname=host)
        except OSError:
            sock.close()
            raise
        seen = tls.peer_fingerprint(sock)
        pinned = self.config.master_fingerprint
        if pinned and seen not in pinned:
            sock.close()
            raise HandshakeRefused("wrong_certificate", "the master presented certificate %s, not the pinned "
                                   "master_fingerprint %s; refusing it" % (seen, " or ".join(pinned)))
        sock.settimeout(None)
        return sock, seen

    def _session(self):
        sock, cert_fingerprint = self._dial()
        link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES, self._address(),
                    on_drained=self.live_channel.drained if self.live_channel is not None else None)
        try:
            try:
                welcome = handshake.worker_side(link, self.key, self.node, self.config.link_timeout,
                                                cert_fingerprint, self.labels, self.runner.users.offered(), self.instance,
                                                self.relay)
            except ConnectionClosed as exc:
                if self.config.master_tls:
                    raise
                # A master that speaks TLS (the default) hangs up on a plaintext hello: a config
                # from before TLS was the default still says master_tls: false.
                raise ConnectionClosed("%s during the handshake; this worker has master_tls: false: "
                                       "does the master speak TLS (worker_tls, on by default)? Then set "
                                       "master_tls: true here" % exc)
            link.decoder.max_frame_bytes = self.config.max_frame_bytes
            log.info("registered with master %s as %s", self._address(), self.node)
            self.outbox.attach(link, protocol.BLOB_FRAMES in protocol.features(welcome))
            self._raw_chunks = protocol.RAW_CHUNKS in protocol.features(welcome)
            if self.live_channel is not None:
                self.live_channel.attach(link, protocol.LIVE_OUTPUT in protocol.features(welcome))
            link.send({"type": protocol.SYNC, "running": self.runner.outstanding_ids() + self._copy_ids()})
            if self.copies is not None:
                self.copies.resume(link)
            beat = gevent.spawn(self._heartbeats, link)
            self._link = link
            try:
                self._serve(link)
            finally:
                self._link = None
                beat.kill()
        finally:
            link.close()

    def _heartbeats(self, link):
        while not link.closed:
            message = {"type": protocol.HEARTBEAT, "stats": stats.collect(),
                       "running": self.runner.running_ids() + self._copy_ids(), "queued": self.runner.queued_ids()}
            link.send(message)
            gevent.sleep(self.config.heartbeat_interval)

    def _serve(self, link):
        handlers = {protocol.RUN: self._run, protocol.KILL: self._kill, protocol.ACK: self._acknowledged,
                    protocol.COPY: self._copy, protocol.OUTPUT_FROM: self._output_from, protocol.PING: self._ping,
                    protocol.ERROR: self._error}
        if self.copies is not None:
            handlers.update({protocol.COPY_BEGIN: self._copy_begin, protocol.COPY_CHUNK: self.copies.chunk})
        if self.fetches is not None:
            handlers.update({protocol.FETCH_BEGIN: self._fetch_begin, protocol.FETCH_ACK: self.fetches.ack})
        while True:
            message = protocol.check_known(link.receive(self.config.link_timeout), protocol.FROM_MASTER)
            handler = handlers.get(message["type"])
            if handler is not None:     # challenge, welcome, pong: nothing to do after the handshake
                handler(link, protocol.checked(message, message["type"]))

    # -- one handler for each message the master sends after the handshake ----------------
    def _run(self, link, message):
        if self.outbox.holds(message["job"]):
            return     # already ran; its result is on its way
        self.runner.start(message["job"], message["cmd"], message.get("timeout"),
                          message.get("env"), message.get("cwd"), message.get("user"), message.get("stdin"))
        # A backlog of run frames is handled one at a time, letting heartbeats,
        # output readers and finished jobs in between.
        gevent.sleep(0)

    def _copy_ids(self):
        """Copies and fetches under way: running jobs, to the master."""
        return ((self.copies.job_ids() if self.copies is not None else []) +
                (self.fetches.job_ids() if self.fetches is not None else []))

    def _kill(self, link, message):
        outcome = self.copies.kill(message["job"]) if self.copies is not None else None
        if outcome is None and self.fetches is not None:
            outcome = self.fetches.kill(message["job"], message.get("reason"))
        if outcome is None:
            outcome = self.runner.kill(message["job"])
        link.send({"type": protocol.KILL_RESULT, "job": message["job"], "outcome": outcome.value})

    def _acknowledged(self, link, message):
        self.outbox.acknowledged(message["job"])
        log.debug("result for %s acknowledged", message["job"])

    def _copy(self, link, message):
        if self.outbox.holds(message["job"]):
            return
        try:
            data = base64.b64decode(message["content"], validate=True)
        except ValueError:
            raise protocol.ProtocolError("copy %s: content is not base64" % message["job"][:100])
        self.runner.copy(message["job"], message["dest"], data, message.get("mode"), message.get("owner"))

    def _copy_begin(self, link, message):
        if not self.outbox.holds(message["job"]):       # else done already: its result is on its way
            self.copies.begin(link, message)

    def _fetch_begin(self, link, message):
        if not self.outbox.holds(message["job"]):
            self.fetches.begin(link, message, raw=self._raw_chunks)

    def _output_from(self, link, message):
        self.runner.output_from(message["job"], message["offsets"])

    @staticmethod
    def _ping(link, message):
        link.send({"type": protocol.PONG})

    @staticmethod
    def _error(link, message):
        raise handshake.refused_by(message)
