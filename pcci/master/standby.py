"""What a standby master serves while another master holds the lease.

Reads of pool history come from the shared database (GET /pool/ID, GET /pools, with
?wait polling the database); the dashboard's files and /health are served too.
Everything else -- submits, kills, the workers' live state, event streams, metrics --
lives on the active master: the answer is 307 to the same path there (the request
is not forwarded: the client repeats it, with its own token, to the master that acts
on it), or 503 ``no_leader`` while no master holds the lease.
"""

from .. import __version__
from ..clock import iso_time
from ..errors import NoLeader, NotLeader
from .api import add_dashboard_routes, add_history_routes, health_role
from .api_edge import JsonErrorsApp, bottle
from .notifier import stored_notifications
from .pool_history import StoreHistory

ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def redirect_target(api_url, path, query_string):
    """The same call on the active master."""
    return api_url.rstrip("/") + path + ("?" + query_string if query_string else "")


def build_standby_app(edge, store, leadership, started_ms):
    app = JsonErrorsApp()
    app.catchall = True
    app.install(edge)
    add_history_routes(app, StoreHistory(store), notifications=stored_notifications(store))
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
