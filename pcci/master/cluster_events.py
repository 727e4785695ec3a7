"""The cluster's events for ``GET /events``: workers coming, going and reporting their
stats, pools created and ended. A ring of the latest ``KEEP_EVENTS`` in one
``event_log.EventLog``, the mechanism a pool's events use too.

A worker's event carries the worker as it is when the event is first sent (its latest
heartbeat), so a follower that falls behind catches up with the present, not with
stale stats; that frame is then kept for every other follower (sse.SharedFrames). A new follower first gets every known worker (``snapshot``), without ids.
"""

from . import views
from .event_log import EventLog
from .sse import SharedFrames

KEEP_EVENTS = 20000


class ClusterEvents:
    def __init__(self, registry, keep=KEEP_EVENTS):
        self.registry = registry
        self.log = EventLog(keep=keep)
        self.frames = SharedFrames()

    def worker_changed(self, name):
        self.log.append("worker", name)

    def worker_forgotten(self, name):
        """DELETE /workers/NAME: the worker is gone for good."""
        self.log.append("forgotten", name)

    def pool_changed(self, pool):
        """A pool was created or has ended."""
        self.log.append("pool", views.pool_json(pool, with_output=False))

    def snapshot(self):
        """Every known worker's event, made one at a time as a follower's stream takes it."""
        return (("worker", views.worker_json(info)) for info in self.registry.all())

    def render(self, kind, data):
        if kind == "worker":
            info = self.registry.get(data)
            return None if info is None else ("worker", views.worker_json(info))
        if kind == "forgotten":
            return "worker_forgotten", {"name": data}
        return kind, data
