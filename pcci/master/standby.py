"""What a standby master serves while another master holds the lease.

Reads of pool history come from the shared database (GET /pool/ID, GET /pools, with
?wait polling the database); the dashboard's files and /health are served too.
Everything else -- submits, kills, the workers' live state, event streams, metrics --
lives on the active master: the answer is 307 to the same path there (the request
is not forwarded: the client repeats it, with its own token, to the master that acts
on it), or 503 ``no_leader`` while no master holds the lease.
"""

import gevent

from .. import __version__
from ..clock import iso_time, monotonic
from ..errors import NoLeader, NotLeader, UnknownPool
from .api import add_dashboard_routes, add_history_routes, health_role
from .api_edge import JsonErrorsApp, bottle
from .pool_ids import is_pool_id

# How often GET /pool/ID?wait=N on a standby looks at the database again.
WAIT_POLL_SECONDS = 0.5
ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


class StoreHistory:
    """The pool reads a standby answers, straight from the database."""

    def __init__(self, store):
        self.store = store

    def get(self, pool_id):
        pool = self.store.get_pool(pool_id) if is_pool_id(pool_id) else None
        if pool is None:
            raise UnknownPool("no pool with id %r (it may have been purged)" % pool_id)
        return pool

    def wait(self, pool_id, seconds):
        pool = self.get(pool_id)
        deadline = monotonic() + seconds
        while not pool.done and monotonic() < deadline:
            gevent.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - monotonic())))
            pool = self.get(pool_id)
        return pool

    @staticmethod
    def live_output(pool):
        return {}           # output in flight is only on the active master

    @staticmethod
    def live_version(pool):
        return None

    def list(self, status, before, limit):
        return self.store.pool_page(status, before, limit)


def redirect_target(api_url, path, query_string):
    """The same call on the active master."""
    return api_url.rstrip("/") + path + ("?" + query_string if query_string else "")


def build_standby_app(edge, store, leadership, started_ms):
    app = JsonErrorsApp()
    app.catchall = True
    app.install(edge)
    add_history_routes(app, StoreHistory(store))
    add_dashboard_routes(app)

    @app.get("/health", open=True)
    def get_health():
        active = leadership.active_master()
        data = {"status": "ok", "version": __version__, "startTime": iso_time(started_ms),
                "active": {"api": active[0], "workers": active[1]} if active else None,
                "lease": {"holder": leadership.known.holder if leadership.known else None,
                          "reachable": leadership.known is not None}}
        return health_role(data, "standby", bottle.request.query) or 200, data

    @app.route("/<path:path>", method=ANY_METHOD, open=True)
    def elsewhere(path):
        # Open: it says only where the active master is, which /health says too; the
        # active master checks the token when the client repeats the call there.
        active = leadership.active_master()
        if active is None or not active[0]:
            raise NoLeader("this master is a standby and no other master holds the lease now; retry in a "
                           "few seconds")
        request = bottle.request
        raise NotLeader("this master is a standby; the active master is %s" % active[0],
                        redirect_target(active[0], request.path, request.query_string))

    return app
