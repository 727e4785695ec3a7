"""What the worker port does with a link once its worker has proved the key.

``ActiveWorkers`` (an active master) claims the worker's name, welcomes it and serves its
session: each message type has one handler (``handlers``), and a type that has none
closes the link. Messages are read as they come (``session_reader``): an idle worker
holds no greenlet. ``StandbyWorkers`` (a standby) tells every worker where the active
master is and closes.
"""

import functools
import logging

from gevent.event import AsyncResult, Event

from .. import framing, protocol
from ..logs import said
from ..protocol import HandshakeRefused
from ..states import WORKER_KILL_OUTCOMES, KillOutcome
from . import relay_address, worker_stats
from .session_reader import SessionReader

log = logging.getLogger(__name__)

# How long an existing session has to answer a ping before a newcomer may take its name.
NAME_PROBE_SECONDS = 2.0
# Encoded once: a pong answers every heartbeat (2,000 a second at 10,000 workers).
PONG_FRAME = framing.encode({"type": protocol.PONG})


class SessionEnded(Exception):
    """The worker said it is going (an ``error`` frame): close its link, quietly."""


class WorkerSession:
    # One for each connected worker: no __dict__.
    __slots__ = ("link", "name", "instance", "labels", "users", "address", "features", "relay", "offered_relay",
                 "live_output", "ready", "complaints", "on_end", "_kill_replies", "_pong")

    def __init__(self, link, name, address, features=frozenset(), labels=None, users=None, instance=None,
                 relay=None, on_end=None, offered_relay=None):
        self.link = link
        self.name = name
        self.instance = instance    # the worker process (protocol.instance), None from an older worker
        self.labels = labels or {}
        self.users = users or []      # the users its jobs may run as (its own first)
        self.address = address
        self.features = frozenset(features)
        self.relay = relay          # where children dial its relay listener {host, port, fingerprint}, or None
        self.offered_relay = offered_relay  # the endpoint its hello named (checked again when relay_networks is reloaded)
        self.live_output = protocol.LIVE_OUTPUT in features   # it sends output while jobs run
        self.ready = False          # dispatch only after the worker's sync
        self.complaints = None      # worker_stats.Complaints once it sent malformed stats
        self.on_end = on_end        # on_end(link, name, exc) once it has ended and been released
        self._kill_replies = {}
        self._pong = None           # an Event while a ping waits (a name claim)

    def send(self, message):
        self.link.send(message)

    def send_pong(self):
        """Answer a heartbeat or ping. A pong only shows the master is there, as bytes already
        waiting for the worker do too: none is added behind them, so a worker that sends
        heartbeats and never reads cannot grow its queue by one pong each."""
        if self.link.queued_bytes():
            return False
        self.send(PONG_FRAME)
        return True

    def request_kill(self, job_id):
        reply = AsyncResult()
        self._kill_replies.setdefault(job_id, []).append(reply)
        self.send({"type": protocol.KILL, "job": job_id})
        return reply

    def kill_replied(self, message):
        protocol.checked(message, protocol.KILL_RESULT)
        if message["outcome"] not in {outcome.value for outcome in WORKER_KILL_OUTCOMES}:
            raise protocol.ProtocolError("kill_result with unknown outcome %r" % message["outcome"][:40])
        for reply in self._kill_replies.pop(message["job"], []):
            reply.set(KillOutcome(message["outcome"]))

    def answers_ping(self, timeout):
        if self._pong is None:
            self._pong = Event()
        self._pong.clear()
        self.send({"type": protocol.PING})
        return self._pong.wait(timeout)

    def ponged(self):
        if self._pong is not None:
            self._pong.set()

    def close(self):
        self.link.close()


class ActiveWorkers:
    """The sessions of an active master: name claims, the registry, and each message a
    worker sends, handed to ``pools`` (the pool service) or answered here."""

    def __init__(self, settings, registry, pools, persister, clock, events=None, copies=None, fetches=None):
        self.config = settings
        self.relay_networks = settings.relay_networks     # as reloaded (set_relay_networks)
        self.copies = copies        # copy_feeder.CopyFeeder: streamed copies' chunks
        self.fetches = fetches      # fetch_sink.FetchSink: files workers send back
        self.registry = registry
        self.pools = pools
        self.persister = persister
        self.clock = clock
        self.events = events        # cluster_events.ClusterEvents: workers coming, going, reporting
        self.handlers = {protocol.HEARTBEAT: self._heartbeat, protocol.OUTPUT: self._output,
                         protocol.RESULT: self._result, protocol.SYNC: self._sync,
                         protocol.KILL_RESULT: self._kill_result, protocol.PING: self._ping,
                         protocol.PONG: self._pong, protocol.ERROR: self._error}
        if copies is not None:
            self.handlers.update({protocol.COPY_FROM: copies.copy_from, protocol.COPY_ACK: copies.copy_ack})
        if fetches is not None:
            self.handlers[protocol.FETCH_CHUNK] = fetches.chunk

    def set_relay_networks(self, networks):
        """relay_networks as a SIGHUP reloaded it: the advertised addresses of workers that
        connect from now on are checked against ``networks``, and those of connected workers
        at once, so a copy planned after the reload dials only what the new list allows.
        Copies already planned keep their parents (their tickets are out); one line for each
        worker whose relay changed."""
        self.relay_networks = networks
        for info in list(self.registry.workers.values()):
            session = info.session
            if session is None or session.offered_relay is None:
                continue
            relay, refused = relay_address.accepted(session.offered_relay, session.address, networks)
            if relay == session.relay:
                continue
            session.relay = relay
            if refused:
                log.warning("worker %s serves no relays from now on: %s", session.name, refused)
            else:
                log.info("worker %s serves relays at %s:%d from now on", session.name, relay["host"], relay["port"])

    def known_addresses(self):
        """The addresses this master's workers last came from (their reserve of handshake slots)."""
        return {info.address for info in self.registry.workers.values() if info.address}

    def serve(self, link, address, welcome, hello, ended):
        """The session of an authenticated worker (``hello`` is what its handshake said);
        ``welcome`` is the frame that tells it it is in. Returns once it is in; its messages
        are then handled as they come (``received``), and ``ended(link, name, exc)`` runs
        once its link has ended and the session is released (``exc`` None when the worker
        said it is going)."""
        relay, refused = relay_address.accepted(hello.relay, address, self.relay_networks)
        if refused:
            log.warning("worker %s serves no relays: %s (the master's relay_networks, docs/security.md *Relays*)",
                        hello.name, refused)
        elif relay is not None and "host" in hello.relay:
            log.info("worker %s serves relays at its advertised address %s:%d", hello.name, relay["host"],
                     relay["port"])
        session = WorkerSession(link, hello.name, address, hello.features, hello.labels, hello.users,
                                hello.instance, relay, ended, hello.relay)
        if self.copies is not None:
            # A copy holds back while the link has a frame queued: it goes on as the link drains.
            link.on_drained = functools.partial(self.copies.drained, session)
        self._claim(session)
        try:
            link.send_now(welcome)
        except BaseException:
            self._release(session)
            raise
        SessionReader(link, session, self, self.config.heartbeat_timeout).start()

    def received(self, session, message):
        """One message of a session (SessionReader); an exception ends the session."""
        kind = message["type"]          # framing made sure there is one
        handler = self.handlers.get(kind)
        if handler is None:
            protocol.check_known(message, protocol.FROM_WORKER)
            raise protocol.ProtocolError("unexpected %r message after the handshake" % kind)
        handler(session, message)

    def ended(self, session, exc):
        """The session's reader ended (``exc`` says why): released, then the port told."""
        self._release(session)
        session.on_end(session.link, session.name, None if isinstance(exc, SessionEnded) else exc)

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
        if self.copies is not None:
            self.copies.forget(session)
        if self.fetches is not None:
            self.fetches.forget(session)
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
            if session.complaints is None:
                session.complaints = worker_stats.Complaints()
            unlogged = session.complaints.due(now)
            if unlogged is not None:
                log.warning("worker %s sent malformed stats: ignored %s%s (see docs/api.md, stats)", session.name,
                            ", ".join(dropped), "; %d more heartbeats with malformed stats since the last such line"
                            % unlogged if unlogged else "")
        return stats

    # -- one handler for each message a worker sends after its handshake ------------------
    def _heartbeat(self, session, message):
        now = self.clock()
        self.registry.heard_from(session.name, now, self._stats_of(session, message, now),
                                 protocol.job_ids(message, "running"), protocol.job_ids(message, "queued"))
        session.send_pong()
        self._changed(session.name)

    def _output(self, session, message):
        self.pools.on_output(session, protocol.check_output(message))

    def _result(self, session, message):
        result, problem = protocol.check_result(message)
        if result["job"].partition("/")[2] != session.name:
            raise protocol.ProtocolError("worker %s sent a result for %s" % (session.name, result["job"]))
        if problem:
            log.warning("worker %s sent an invalid result for %s (%s); the job is marked failed",
                        session.name, result["job"], problem)
        if self.fetches is not None:
            result = self.fetches.checked_result(session.name, result)
        self.registry.heard_from(session.name, self.clock())
        ended = self.registry.job_ended(session.name, result["job"])    # runningJobs at once, not at the next beat
        self.pools.on_result(session, result)
        if self.copies is not None:
            self.copies.ended(session, result["job"])
        if self.fetches is not None:
            self.fetches.ended(session, result["job"])
        if ended:
            self._changed(session.name)

    def _sync(self, session, message):
        running = protocol.job_ids(message, "running")
        if running is None:
            raise protocol.ProtocolError("sync without a list of running job ids")
        coming_online = not session.ready
        # Ready first: the sync may start jobs that waited for this worker (offline
        # queueing, a rolling batch); its lost jobs are settled in the same call.
        session.ready = True
        self.pools.on_sync(session, running, self.registry.resumes(session))
        if self.fetches is not None:
            self.fetches.resume(session)        # fetches under way go on from where the master's copy ends
        changed = self.registry.synced(session)
        if changed is not None:
            # Saved after the sync's own changes (the jobs it gave up on), in the same
            # transaction or a later one: a restarted master never takes a process
            # for the one that synced last before those are on disk.
            self._remember(changed)
        if coming_online:
            log.info("worker %s online from %s", session.name, session.address)
            self._changed(session.name)

    @staticmethod
    def _kill_result(session, message):
        session.kill_replied(message)

    @staticmethod
    def _ping(session, message):
        session.send_pong()

    @staticmethod
    def _pong(session, message):
        session.ponged()

    @staticmethod
    def _error(session, message):
        log.warning("worker %s reported an error: %s", session.name, said(message.get("message")))
        raise SessionEnded()


class StandbyWorkers:
    """A standby master's answer to every worker that proves the key: ``not_leader``, and
    where the active master is (``leader()`` gives its worker address, or None)."""

    def __init__(self, leader):
        self.leader = leader

    @staticmethod
    def known_addresses():
        return frozenset()

    def serve(self, link, address, welcome, hello, ended):
        leader = self.leader()
        raise HandshakeRefused("not_leader", "this master is a standby; the active master is %s"
                               % (leader or "not known yet (an election is under way)"), leader=leader)
