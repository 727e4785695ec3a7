"""The API's edge: no route open by mistake, 401s that say the scheme, requests that never
share state, and broken HTTP answered with a 4xx instead of a 500."""

import io
import json
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import REPO
from pcci import config
from pcci.master.api import OPEN_PATHS, build_app
from pcci.master.api_edge import ApiEdge
from pcci.master.blob_store import BlobStore
from pcci.master.fetch_sink import FetchSink
from pcci.master.persister import Persister
from pcci.master.pool_core import PoolCore
from pcci.master.pool_ids import PoolIdMaker
from pcci.master.pool_service import PoolService
from pcci.master.cluster_events import ClusterEvents
from pcci.master.pool_feeds import PoolFeeds
from pcci.master.registry import Registry
from pcci.master.store import Store

TOKEN = "edge-token-" + "e" * 16


@pytest.fixture
def app(tmp_path):
    """The real app over a real store, in this process: every route it has, as built."""
    store = Store(str(tmp_path / "pcci.sqlite3"))
    store.open()
    registry = Registry()
    persister = Persister(store)
    core = PoolCore(registry, 60000, 0, PoolIdMaker().make, 100)
    events = ClusterEvents(registry)
    pools = PoolService(core, store, registry, persister, lambda: 0, PoolFeeds(1 << 20), events)
    settings = config.validate({"api_tokens": [TOKEN]}, config.MASTER_KEYS, "test")
    blobs = BlobStore(str(tmp_path / "files"), 1 << 20)
    fetched = FetchSink(str(tmp_path / "fetched"), lambda worker, job: None, lambda worker: [], 1 << 20)
    yield build_app(settings, pools, registry, persister, ApiEdge(settings.api_tokens), 0, events, blobs=blobs,
                    fetched=fetched)
    persister.stop()
    store.close()


def call(app, method, path, headers=None, body=b""):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8080", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "SERVER_PROTOCOL": "HTTP/1.1"}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = {name.lower(): value for name, value in response_headers}
    data = b"".join(app(environ, start_response))
    is_json = answer["headers"].get("content-type", "").startswith("application/json")
    return answer["status"], answer["headers"], json.loads(data) if is_json else data


def concrete(rule):
    """A path that the route's rule matches: each <parameter> filled in."""
    if rule == "/ui/<name>":
        return "/ui/app.js"
    return re.sub(r"<[^>]+>", str(uuid.uuid4()), rule)


def test_every_route_but_the_open_ones_needs_a_token(app):
    routes = [(route.method, route.rule) for route in app.routes]
    assert len(routes) >= 7
    for method, rule in routes:
        status, headers, body = call(app, method, concrete(rule))
        if rule in OPEN_PATHS:
            assert status == 200, (method, rule, body)
        else:
            assert status == 401, (method, rule, body)
            assert body["error"]["code"] == "missing_token"
            assert headers["www-authenticate"] == 'Bearer realm="pcci"'
            assert headers["content-type"].startswith("application/json")


def test_the_openapi_document_describes_exactly_the_apps_routes(app):
    from pcci.master.openapi import SPEC
    served = {(route.method, re.sub(r"<(\w+)>", r"{\1}", route.rule)) for route in app.routes}
    assert served == {(method.upper(), path) for path, methods in SPEC["paths"].items() for method in methods}


def test_a_wrong_token_is_told_so_in_the_challenge(app):
    status, headers, body = call(app, "GET", "/pools", {"Authorization": "Bearer not-the-token-at-all"})
    assert status == 401 and body["error"]["code"] == "bad_token"
    assert headers["www-authenticate"] == 'Bearer realm="pcci", error="invalid_token"'


def test_a_route_added_later_is_closed_and_answers_json(app):
    @app.get("/added-later")
    def added_later():
        raise ValueError("a bug")
    status, _, body = call(app, "GET", "/added-later")
    assert status == 401
    status, _, body = call(app, "GET", "/added-later", {"Authorization": "Bearer " + TOKEN})
    assert status == 500 and body == {"error": {"code": "internal_error",
                                                "message": "internal error; see the master's log"}}


def test_submitting_with_no_worker_online_is_503_not_the_clients_fault(app):
    status, _, body = call(app, "POST", "/job", {"Authorization": "Bearer " + TOKEN}, b'{"cmd": "true"}')
    assert status == 503 and body["error"]["code"] == "no_workers_online"


def test_bottles_request_and_response_are_per_greenlet():
    import gevent
    from pcci.master.api_edge import bottle
    seen = {}

    def handle(name):
        bottle.request.bind({"PATH_INFO": "/" + name, "REQUEST_METHOD": "GET"})
        bottle.response.bind()
        bottle.response.status = 200 + len(name)
        gevent.sleep(0.01)      # the other request runs here
        seen[name] = (bottle.request.path, bottle.response.status_code)
    gevent.joinall([gevent.spawn(handle, "a"), gevent.spawn(handle, "bb")])
    assert seen == {"a": ("/a", 201), "bb": ("/bb", 202)}


def test_importing_bottle_before_the_api_fails_loudly():
    result = subprocess.run([sys.executable, "-c", "import bottle\nimport pcci.master.api"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "RuntimeError: bottle was imported before" in result.stderr


# -- a real master --------------------------------------------------------------------------

@pytest.fixture
def served(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    return cluster


def test_concurrent_slow_requests_never_get_each_others_answers(served):
    """Bottle's request and response must be per greenlet: each of these yields mid-request,
    and with a shared response one request's reset would strip another's headers."""
    slow = served.api("POST", "/job", {"cmd": "sleep 1; echo slow", "workers": ["pi1"]})[1]["id"]
    failures = []

    def fetch(method, path, body=None):
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (served.api_port, path), method=method,
                                         data=json.dumps(body).encode() if body else None)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, json.loads(exc.read())

    def waiter(index):
        status, headers, body = fetch("GET", "/pool/%s?wait=0.4" % slow)
        if (status, body["id"], headers["Content-Type"], headers["Location"]) != (
                200, slow, "application/json", None):
            failures.append(("wait", index, status, dict(headers), body))

    def submitter(index):
        status, headers, body = fetch("POST", "/job", {"cmd": "echo %d" % index, "workers": ["pi1"]})
        if (status, set(body["jobs"]), headers["Content-Type"], headers["Location"]) != (
                202, {"pi1"}, "application/json", "/pool/" + body["id"]):
            failures.append(("submit", index, status, dict(headers), body))

    threads = [threading.Thread(target=kind, args=(n,)) for n in range(8) for kind in (waiter, submitter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []


def raw_http(cluster, data, read_timeout=10):
    with socket.create_connection(("127.0.0.1", cluster.api_port), timeout=read_timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    return int(head.split()[1]), json.loads(rest[:length])


@pytest.mark.parametrize("request_bytes,status,code", [
    (b"POST /job HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n",
     400, "malformed_request"),
    (b"POST /job HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"cmd\": \"tr", 400, "malformed_request"),
])
def test_broken_http_bodies_are_a_4xx_and_one_info_line_not_a_500(served, request_bytes, status, code):
    got, body = raw_http(served, request_bytes)
    assert got == status and body["error"]["code"] == code
    log = served.master.log()
    assert "Traceback" not in log and "ERROR" not in log
    assert served.run("echo fine", ["pi1"])["jobs"]["pi1"]["stdout"] == "fine\n"


def test_a_body_that_stops_arriving_is_408_after_the_idle_timeout(cluster):
    cluster.start_master(api_idle_timeout="1s")
    with socket.create_connection(("127.0.0.1", cluster.api_port), timeout=10) as sock:
        sock.sendall(b'POST /job HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"cmd": ')
        answer = b""
        for _ in range(100):    # until the master closes the connection
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer
    assert "Traceback" not in cluster.master.log()


def test_without_tokens_a_web_page_cannot_drive_the_api(served):
    """Observed before: a text/plain POST with a foreign Origin and Host was accepted and ran."""
    evil = {"Content-Type": "text/plain", "Origin": "http://evil.example", "Host": "evil.example:8080"}
    status, body = served.api("POST", "/job", {"cmd": "echo pwned", "workers": ["pi1"]}, headers=evil)
    assert status == 403 and body["error"]["code"] == "forbidden_host"       # DNS rebinding
    status, body = served.api("POST", "/job", {"cmd": "echo pwned", "workers": ["pi1"]},
                              headers={"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert status == 403 and body["error"]["code"] == "forbidden_origin"     # a cross-site form or fetch
    assert served.api("GET", "/pools")[1]["pools"] == []                     # nothing ran
    origin = {"Origin": "http://127.0.0.1:%d" % served.api_port}
    assert served.api("POST", "/job", {"cmd": "true", "workers": ["pi1"]}, headers=origin)[0] == 202
    assert served.api("GET", "/health", headers={"Host": "localhost:%d" % served.api_port})[0] == 200


def test_with_tokens_the_host_and_origin_are_left_to_the_token(cluster):
    cluster.start_master(api_tokens=[TOKEN])
    status, _ = cluster.api("GET", "/pools", headers={"Host": "pcci.example.org", "Origin": "http://elsewhere"})
    assert status == 200


def test_the_dashboards_files_are_served_with_their_policy_and_nothing_else(app):
    status, headers, page = call(app, "GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert b'<script type="module" src="/ui/app.js"></script>' in page
    status, headers, script = call(app, "GET", "/ui/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"./workers.js" in script
    # A browser that has this version gets no body again.
    status, _, body = call(app, "GET", "/ui/app.js", {"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    # Only the dashboard's own files: no other name, no way out of its directory.
    for path in ("/ui/nosuch.js", "/ui/..%2F..%2Fapi.py", "/ui/__init__.py", "/ui/", "/ui/../api.py"):
        status, headers, body = call(app, "GET", path)
        assert status == 404 and body["error"]["code"] == "not_found", path


def test_an_answer_holding_a_lone_surrogate_is_still_utf8_json():
    """Text the master holds may carry one (a worker's, a store's): bottle's own encoding
    answered such a body with an HTML page."""
    import json
    from pcci.master.api_edge import to_json_bytes
    body = to_json_bytes({"path": "/mnt/\ud800disk", "name": "caf\u00e9"})
    assert json.loads(body.decode("utf-8")) == {"path": "/mnt/\ud800disk", "name": "caf\u00e9"}
