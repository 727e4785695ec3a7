"""Which workers the master knows, which are online, and what their last heartbeat said.

Pure bookkeeping: the worker port attaches and detaches sessions and passes the time;
the pool core reads who is online and since when.
"""

from ..model import WorkerRecord
from ..targets import Cluster
from . import worker_stats


class WorkerInfo:
    # One for each worker the master knows, ten thousand in a large cluster: no __dict__.
    __slots__ = ("name", "labels", "users", "features", "address", "first_seen", "last_seen", "stats", "session",
                 "connected_since", "last_heartbeat", "running", "queued", "offline_since", "instance")

    def __init__(self, name, address=None, first_seen=None, last_seen=None, stats=None, labels=None):
        self.name = name
        self.labels = labels or {}      # as its config says, sent at each handshake
        self.users = []                 # users its jobs may run as, from its last handshake
        self.features = frozenset()     # what its release can do (protocol.FEATURES), same
        self.address = address
        self.first_seen = first_seen
        self.last_seen = last_seen
        self.stats = stats
        self.session = None
        self.connected_since = None
        self.last_heartbeat = None
        self.running = []
        self.queued = []
        self.offline_since = last_seen
        self.instance = None            # the worker process that synced last (protocol.instance)

    @property
    def online(self):
        """Connected and synced: ready to be sent jobs."""
        return self.session is not None and self.session.ready

    def record(self):
        """What the store keeps of this worker."""
        return WorkerRecord(self.name, self.address, self.first_seen, self.last_seen, self.stats, self.labels,
                            self.instance)


class Registry:
    def __init__(self):
        self.workers = {}

    def load(self, records, now_ms):
        """Workers remembered from earlier runs start offline, as of now."""
        for record in records:
            # Stats kept before the master checked them may hold anything (worker_stats).
            info = WorkerInfo(record.name, record.address, record.first_seen, record.last_seen,
                              worker_stats.clean(record.stats)[0], record.labels)
            info.offline_since = now_ms
            info.instance = record.instance
            self.workers[info.name] = info

    def get(self, name):
        return self.workers.get(name)

    def is_online(self, name):
        info = self.workers.get(name)
        return info is not None and info.online

    def session(self, name):
        """The worker's session if it is online, else None."""
        info = self.workers.get(name)
        return info.session if info is not None and info.online else None

    def connected_session(self, name):
        """The worker's session if it is connected, synced or not (acks go out before the sync)."""
        info = self.workers.get(name)
        return info.session if info is not None else None

    def online_names(self):
        return sorted(name for name, info in self.workers.items() if info.online)

    def attach(self, session, now_ms):
        info = self.workers.get(session.name)
        if info is None:
            info = self.workers[session.name] = WorkerInfo(session.name, first_seen=now_ms)
        info.session = session
        info.address = session.address
        info.labels = session.labels
        info.users = session.users
        info.features = session.features
        info.connected_since = now_ms
        info.last_seen = now_ms
        info.offline_since = None
        return info

    def detach(self, session, now_ms):
        """Mark the worker offline, unless a newer session has already replaced this one."""
        info = self.workers.get(session.name)
        if info is None or info.session is not session:
            return None
        info.session = None
        info.connected_since = None
        info.running = []
        info.queued = []
        info.last_seen = now_ms
        info.offline_since = now_ms
        return info

    def resumes(self, session):
        """Whether this session's worker process is the one that synced last: then a job it
        was sent since and does not name in this sync never reached it."""
        info = self.workers.get(session.name)
        return session.instance is not None and info is not None and info.instance == session.instance

    def synced(self, session):
        """The session has synced: its process is now the one that synced last. The info
        when that changed it (its record is to be saved), else None."""
        info = self.workers.get(session.name)
        if info is None or info.session is not session or info.instance == session.instance:
            return None
        info.instance = session.instance
        return info

    def heard_from(self, name, now_ms, stats=None, running=None, queued=None):
        info = self.workers.get(name)
        if info is None:
            return
        info.last_seen = now_ms
        if stats is not None:
            info.stats = stats
            info.last_heartbeat = now_ms
        if running is not None:
            info.running = running
        if queued is not None:
            info.queued = queued

    def job_ended(self, name, job_id):
        """A result came for this job: it runs no more, whatever the worker's last heartbeat
        said (a pool that ended shows no running job until the next one)."""
        info = self.workers.get(name)
        if info is not None and (job_id in info.running or job_id in info.queued):
            info.running = [other for other in info.running if other != job_id]
            info.queued = [other for other in info.queued if other != job_id]
            return True
        return False

    def forget(self, name):
        """Drop an offline worker for good (it will not return); False if it is connected."""
        info = self.workers.get(name)
        if info is None or info.session is not None:
            return False
        del self.workers[name]
        return True

    def all(self):
        return [self.workers[name] for name in sorted(self.workers)]

    def target_view(self, groups):
        """What a target expression is resolved against (targets.Cluster)."""
        return Cluster(self.online_names, self.labels, groups)

    def labels(self):
        """Each known worker's labels: a target indexes them once per resolution."""
        return {name: info.labels for name, info in self.workers.items()}
