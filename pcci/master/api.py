"""The REST API's routes over the pool service and the registry.

Each route returns ``(status, data)``; the edge (``api_edge.ApiEdge``) checks the
token against the route's ``scope``, turns errors into JSON and writes the answer.
Routes declared ``open=True`` need no token: /health and /openapi.json. docs/api.md
describes every route.
"""

import dataclasses

import gevent

from .. import __version__
from ..clock import iso_time
from ..errors import BadEventId, MetricsUnavailable, NoSuchEndpoint, PayloadTooLarge, StoreUnavailable, \
    UnknownWorker, WorkerOnline
from . import pool_pages, sse, validation, views
from .api_edge import Document, EventStream, JsonErrorsApp, bottle, caller, from_networks, header, note_for_audit, \
    read_body, to_json_bytes
from .dashboard import DashboardFiles
from .event_log import BadCursor
from .file_routes import add_fetch_routes, add_file_routes
from .pool_feeds import render_event
from .metrics import TEXT_FORMAT
from .notify_allow import CurrentAllowList
from .openapi import SPEC
from .pool_renders import PoolRenders
from .schedule_api import add_schedule_routes
from .schedule_runs import ScheduleRuns
from .scheduler import Scheduler
from .streamed_json import amend_end, pool_parts, spilled_bytes

OPEN_PATHS = ("/health", "/openapi.json", "/", "/ui/<name>")
# How long DELETE /workers/NAME waits for the store to delete the record.
FORGET_SAVE_SECONDS = 10
# What a copy frame holds besides the file's base64.
COPY_FRAME_OVERHEAD = 64 * 1024


def largest_copy(settings):
    """The largest file POST /copy takes: its base64 must fit one frame (and the request body)."""
    return max(0, (min(settings.max_frame_bytes, settings.max_body_bytes) - COPY_FRAME_OVERHEAD) * 3 // 4)


def pool_body(pools, renders, pool, env_values):
    """GET /pool/ID's body for ``pool``: its env values shown to an ``operate`` caller only.
    Bytes, or an iterator of them for a pool with an output held in a file (streamed_json)."""
    def data():
        return views.pool_json(pool, env_values=env_values, live=pools.live_output(pool))
    spilled = spilled_bytes(pool) + pools.live_spilled_bytes(pool)
    if not spilled:
        return renders.body(pool, env_values, lambda: to_json_bytes(data()), pools.live_version(pool))
    if spilled > renders.largest:        # too large to share: each reader streams it from the file
        return pool_parts(data())
    return renders.body(pool, env_values, lambda: b"".join(pool_parts(data())), pools.live_version(pool))


def waited_pool(pools, renders, pool_id, seconds):
    """POST /job?wait='s body, streamed: a space at once (so the status line and the
    Location header leave before the wait: a client knows its pool id, to kill it on
    Ctrl-C), then the pool as GET /pool/ID?wait= answers it. It holds what that wait does."""
    yield b" "
    body = pool_body(pools, renders, pools.wait(pool_id, seconds), env_values=True)
    if isinstance(body, bytes):
        yield body
    else:
        yield from body


def with_notifications(body, shown):
    """A pool's body with its notifications (``shown``) added: not kept in the shared
    rendering (``renders``), since attempts go on after the pool ended."""
    if not shown:
        return body

    def amend(end):
        return end.rstrip()[:-1] + b',"notifications":' + to_json_bytes(shown).rstrip() + b"}\n"
    return amend(body) if isinstance(body, bytes) else amend_end(body, amend)


def add_history_routes(app, pools, renders=None, notifications=None):
    """GET /pool/ID and GET /pools: what an active master and a standby both answer
    (``pools``: the pool service, or a standby's ``StoreHistory``); ``notifications(pool id,
    full_urls)`` is a pool's notifications (``Notifier.notifications``), or None."""
    renders = renders or PoolRenders()

    @app.get("/pool/<pool_id>", scope="read")
    def get_pool(pool_id):
        pool = pools.wait(pool_id, validation.wait_seconds(bottle.request.query))
        env_values = caller(bottle.request).allows("operate")
        shown = notifications and notifications(pool.pool_id, env_values)
        return 200, Document(with_notifications(pool_body(pools, renders, pool, env_values), shown),
                             "application/json")

    @app.get("/pools", scope="read")
    def get_pools():
        query = validation.pools_query(bottle.request.query)
        page, cut = pools.list(query["status"], query["before"], query["limit"])
        listed = (views.pool_json(pool, with_output=False) for pool in page)
        return 200, Document(pool_pages.render_page(listed, cut), "application/json")


def add_dashboard_routes(app):
    """The dashboard's files and the OpenAPI document, open to all."""
    files = DashboardFiles()

    def dashboard_file(name):
        answer = files.answer(name, header(bottle.request, "If-None-Match"))
        if answer is None:
            raise NoSuchEndpoint("the dashboard has no file %r" % name[:100])
        return answer

    @app.get("/", open=True)
    def get_dashboard():
        return dashboard_file("index.html")

    @app.get("/ui/<name>", open=True)
    def get_dashboard_file(name):
        return dashboard_file(name)

    @app.get("/openapi.json", open=True)
    def get_openapi():
        return 200, SPEC


def health_role(data, role, query):
    """/health's answer gains the master's role; ``?role=active`` (or standby) makes the
    status 503 when this master is not in that role, for a load balancer's check (as
    Patroni's /primary does); another value is a 400."""
    data["role"] = role
    wanted = validation.health_query(query)
    return 503 if wanted and wanted != role else None


def build_app(settings, pools, registry, persister, edge, started_ms, events, metrics=None, blobs=None,
              fetched=None, scheduler=None, notify_allow=None):
    """The bottle app. `settings` is the master's validated config; `edge` its ApiEdge;
    `events` the cluster's (cluster_events.ClusterEvents); `metrics` a metrics.Metrics,
    or None when prometheus_client is missing; `blobs` the uploaded files
    (blob_store.BlobStore); `fetched` the files workers sent back (fetch_sink.FetchSink);
    `scheduler` the schedules' (scheduler.Scheduler; default: one that holds none and
    fires nothing); `notify_allow` notify_allow as reloaded (notify_allow.CurrentAllowList;
    default: the config's)."""
    notify_allow = notify_allow or CurrentAllowList(settings.notify_allow)
    app = JsonErrorsApp()
    app.catchall = True
    app.install(edge)

    def body():
        return read_body(bottle.request, settings.max_body_bytes)

    def with_caller(request):
        """The checked request, with who sent it and from where."""
        token = caller(bottle.request)
        return dataclasses.replace(request, submitted_by=token.name, submitter_scope=token.scope,
                                   submitted_from=bottle.request.environ.get("REMOTE_ADDR"))

    renders = PoolRenders()

    @app.post("/job", scope="operate")
    def post_job():
        wait = validation.submit_wait_seconds(bottle.request.query)
        request = with_caller(validation.job_request(body(), settings.max_pool_jobs, notify_allow.current))
        pool = pools.submit(request)
        note_for_audit(bottle.request, "pool %s on %d worker(s): %s" % (pool.pool_id, len(pool.jobs),
                                                                       pool.cmd[:200]))
        bottle.response.set_header("Location", views.pool_url(pool.pool_id))
        if wait is None:
            return 202, views.submitted_json(pool)
        # ?wait=: one request submits and waits, as POST then GET /pool/ID?wait= would.
        return 200, Document(waited_pool(pools, renders, pool.pool_id, wait), "application/json")

    @app.post("/copy", scope="operate")
    def post_copy():
        try:
            data = body()
        except PayloadTooLarge as exc:
            raise PayloadTooLarge("%s: a copy carries a file of at most %d bytes (raise max_body_bytes, and "
                                  "max_frame_bytes on the master and the workers, to send more)"
                                  % (exc.message, largest_copy(settings)))
        request = with_caller(validation.copy_request(data, settings.max_pool_jobs, largest_copy(settings),
                                                      notify_allow.current))
        if request.copy.blob is not None:
            if blobs is None:
                raise NoSuchEndpoint("this master takes no uploaded files; send 'content'")
            size = blobs.size(request.copy.blob)
            request = dataclasses.replace(request, cmd="copy to %s (%d bytes)" % (request.copy.dest, size),
                                          copy=dataclasses.replace(request.copy, size=size))
        return accepted(request)

    def accepted(request):
        """Submit a checked request: its pool, audited, answered 202 with its Location."""
        pool = pools.submit(request)
        note_for_audit(bottle.request, "pool %s on %d worker(s): %s" % (pool.pool_id, len(pool.jobs), pool.cmd[:200]))
        bottle.response.set_header("Location", views.pool_url(pool.pool_id))
        return 202, views.submitted_json(pool)

    add_history_routes(app, pools, renders, pools.notifier and pools.notifier.notifications)
    if blobs is not None:
        add_file_routes(app, blobs)
    if fetched is not None:
        add_fetch_routes(app, pools, fetched)

        @app.post("/fetch", scope="operate")
        def post_fetch():
            return accepted(with_caller(validation.fetch_request(body(), settings.max_pool_jobs,
                                                                   notify_allow.current)))

    def event_cursor():
        try:
            return sse.cursor(lambda name: header(bottle.request, name), bottle.request.query)
        except BadCursor as exc:
            raise BadEventId(str(exc))

    @app.get("/pool/<pool_id>/events", scope="read")
    def get_pool_events(pool_id):
        position = event_cursor()
        feed = pools.follow(pool_id)
        return 200, EventStream(sse.stream(feed.log, position, render_event, shared=feed.frames))

    @app.get("/events", scope="read")
    def get_events():
        position = event_cursor()
        return 200, EventStream(sse.stream(events.log, position, events.render, snapshot=events.snapshot,
                                           shared=events.frames))

    @app.get("/workers", scope="read")
    def get_workers():
        query = bottle.request.query
        if not query.get("target") and not query.get("exclude"):
            return 200, {"workers": [views.worker_json(info) for info in registry.all()]}
        terms, _ = validation.target(query.get("target") or "*", query.get("exclude") or None,
                                     settings.max_pool_jobs)
        names = pools.select(terms)
        return 200, {"workers": [views.worker_json(registry.get(name)) for name in names
                                 if registry.get(name) is not None]}

    @app.delete("/workers/<name>", scope="admin")
    def delete_worker(name):
        info = registry.get(name)
        if info is None:
            raise UnknownWorker("no worker named %r is known to this master" % name[:200])
        if not registry.forget(name):
            raise WorkerOnline("worker %s is connected (from %s); stop it or cut it off first, then forget it"
                               % (name, info.address))
        persister.forget_worker(name)
        events.worker_forgotten(name)
        note_for_audit(bottle.request, "worker %s forgotten" % name)
        try:
            persister.committed().get(timeout=FORGET_SAVE_SECONDS)
        except gevent.Timeout:
            raise StoreUnavailable("worker %s is forgotten, but the store has not deleted its record yet (%s); "
                                   "it will when the store saves again" % (name, persister.last_error))
        return 200, {"name": name, "forgotten": True}

    @app.put("/kill/<pool_id>", scope="operate")
    def put_kill(pool_id):
        workers = validation.kill_request(body())["workers"]
        outcomes = pools.kill(pool_id, workers, settings.kill_reply_timeout, caller(bottle.request).name)
        note_for_audit(bottle.request, ", ".join("%s %s" % item for item in sorted(outcomes.items()))[:300])
        return 200, {"id": pool_id, "workers": outcomes}

    @app.get("/health", open=True)
    def get_health():
        store_problem = persister.health()
        data = {"status": "ok" if store_problem is None else "store_failing", "version": __version__,
                "workersOnline": len(registry.online_names()), "activePools": pools.active_count(),
                "startTime": iso_time(started_ms),
                "store": {"saving": store_problem is None, "full": bool(store_problem and store_problem["full"]),
                          "backlog": persister.backlog,
                          "error": store_problem and store_problem["error"],
                          "failingSince": store_problem and iso_time(store_problem["since"])}}
        return health_role(data, "active", bottle.request.query) or (200 if store_problem is None else 503), data

    def scraper_is_trusted(request):
        return from_networks(request.environ.get("REMOTE_ADDR"), settings.metrics_open_to)

    @app.get("/metrics", scope="read", open=scraper_is_trusted)
    def get_metrics():
        if metrics is None:
            raise MetricsUnavailable("the master started without the Python library prometheus_client; "
                                     "install python3-prometheus-client and restart it")
        return 200, Document(metrics.exposition(), TEXT_FORMAT)

    if scheduler is None:
        scheduler = Scheduler(pools.store, pools, ScheduleRuns(), pools.clock, settings, largest_copy(settings),
                              notify_allow)
    add_schedule_routes(app, scheduler, body)

    add_dashboard_routes(app)
    return app
