"""The REST API: bottle routes over the pool manager, with JSON for every answer and error.

Bottle keeps the current request in a ``threading.local``. Here one thread serves many
requests at once, one greenlet each, so before bottle is imported that local is made
per greenlet; otherwise one request could answer with another's response.
"""

import json
import logging
import threading

import gevent.local
from gevent import monkey

if "bottle" not in __import__("sys").modules:
    monkey.patch_item(threading, "local", gevent.local.local)
import bottle  # noqa: E402  (must follow the patch above)

from .. import __version__, auth  # noqa: E402
from ..states import iso_time  # noqa: E402
from ..errors import ApiError, PayloadTooLarge, Unauthorized, code_for_status  # noqa: E402
from . import requests  # noqa: E402
from .openapi import SPEC  # noqa: E402

log = logging.getLogger(__name__)

OPEN_PATHS = {"/health", "/openapi.json"}


class JsonErrorsApp(bottle.Bottle):
    """Bottle's own errors (no route, wrong method, crash) as JSON, never its HTML page."""

    def default_error_handler(self, res):
        bottle.response.content_type = "application/json"
        message = res.body if isinstance(res.body, str) and res.body else res.status_line
        if res.status_code == 405:
            message = "method %s is not allowed on %s" % (bottle.request.method, bottle.request.path)
        elif res.status_code == 404:
            message = "no such endpoint: %s %s" % (bottle.request.method, bottle.request.path)
        elif res.status_code >= 500:
            message = "internal error; see the master's log"
        log.info("%s %s -> %d", bottle.request.method, bottle.request.path, res.status_code)
        return _json({"error": {"code": code_for_status(res.status_code), "message": message}})


def _json(data):
    return json.dumps(data, ensure_ascii=False) + "\n"


def build_app(config, pools, registry, started_ms):
    app = JsonErrorsApp()
    app.catchall = True

    def endpoint(handler):
        """Wrap a route: check the token, turn ApiErrors into JSON, log each failure once."""
        def wrapped(*args, **kwargs):
            bottle.response.content_type = "application/json"
            try:
                _check_token(config.api_tokens, bottle.request)
                status, data = handler(*args, **kwargs)
            except ApiError as exc:
                log.info("%s %s -> %d %s: %s", bottle.request.method, bottle.request.path,
                         exc.status, exc.code, exc.message)
                status, data = exc.status, exc.to_json()
            except Exception:
                log.exception("%s %s failed", bottle.request.method, bottle.request.path)
                status, data = 500, {"error": {"code": "internal_error",
                                               "message": "internal error; see the master's log"}}
            bottle.response.status = status
            return _json(data)
        return wrapped

    def body():
        return _read_body(bottle.request, config.max_body_bytes)

    @app.post("/job")
    @endpoint
    def post_job():
        pool = pools.submit(requests.job_request(body()))
        url = "/pool/%s" % pool.pool_id
        bottle.response.set_header("Location", url)
        return 202, {"id": pool.pool_id, "url": url, "status": pool.status.value,
                     "jobs": {name: job.state.value for name, job in pool.jobs.items()}}

    @app.get("/pool/<pool_id>")
    @endpoint
    def get_pool(pool_id):
        pool = pools.wait(pool_id, requests.wait_seconds(bottle.request.query))
        return 200, pool.to_json()

    @app.get("/pools")
    @endpoint
    def get_pools():
        query = requests.pools_query(bottle.request.query)
        page = pools.list(query["status"], query["before"], query["limit"])
        following = page[-1].pool_id if len(page) == query["limit"] else None
        return 200, {"pools": [pool.to_json(with_output=False) for pool in page], "next": following}

    @app.get("/workers")
    @endpoint
    def get_workers():
        return 200, {"workers": registry.to_json()}

    @app.put("/kill/<pool_id>")
    @endpoint
    def put_kill(pool_id):
        workers = requests.kill_request(body())["workers"]
        outcomes = pools.kill(pool_id, workers, config.kill_reply_timeout)
        return 200, {"id": pool_id, "workers": outcomes}

    @app.get("/health")
    @endpoint
    def get_health():
        return 200, {"status": "ok", "version": __version__, "workersOnline": len(registry.online_names()),
                     "activePools": len(pools.active), "startTime": iso_time(started_ms)}

    @app.get("/openapi.json")
    @endpoint
    def get_openapi():
        return 200, SPEC

    return app


def _check_token(tokens, request):
    if not tokens or request.path in OPEN_PATHS:
        return
    header = request.get_header("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("send the API token as 'Authorization: Bearer <token>'", code="missing_token")
    if not auth.token_matches(tokens, given.strip()):
        raise Unauthorized("the API token is not one this master accepts", code="bad_token")


def _read_body(request, limit):
    """The raw body, refusing anything over the limit before reading it all."""
    length = request.content_length
    if length > limit:
        raise PayloadTooLarge("the body is %d bytes; the limit is %d" % (length, limit))
    stream = request.environ["wsgi.input"]
    data = stream.read(length if length >= 0 else limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge("the body is over the %d byte limit" % limit)
    return data
