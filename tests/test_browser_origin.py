"""Without api_tokens the master trusts its loopback callers: these tests are the pages
that must not pass for one (a look-alike host name, another local port), against a real
master and worker."""

import http.server
import threading

import pytest

import browser
from browser import requires_browser
from conftest import wait_until
from test_api_edge import served  # noqa: F401 (the fixture)

SUBMIT = {"cmd": "echo pwned", "workers": ["pi1"]}


def refused(cluster, headers):
    status, body = cluster.api("POST", "/job", SUBMIT, headers=dict(headers, **{"Content-Type": "text/plain"}))
    return status, body["error"]["code"] if status >= 400 else None


def test_a_page_on_a_look_alike_host_name_cannot_run_a_job(served):
    """Observed before: Origin http://127.0.0.1.evil.test:PORT passed as loopback, and the job ran."""
    port = served.api_port
    for origin in ("http://127.0.0.1.evil.test:%d" % port, "http://localhost.evil.test:%d" % port,
                   "http://evil.localhost:%d" % port, "http://127.0.0.1:%d.evil.test" % port,
                   "http://127.0.0.1:%d@evil.test" % port, "null", "http://127.0.0.1:%d/" % port):
        assert refused(served, {"Origin": origin}) == (403, "forbidden_origin"), origin
    for host in ("127.0.0.1.evil.test:%d" % port, "127.evil.test", "localhost.evil.test", "x.localhost",
                 "127.0.0.1:%d.evil.test" % port, "127.0.0.1 evil.test"):
        assert refused(served, {"Host": host}) == (403, "forbidden_host"), host
    assert served.api("GET", "/pools")[1]["pools"] == []                     # nothing ran


def test_a_page_on_another_local_port_cannot_run_a_job(served):
    """Another service on this machine's loopback (a dev server on :3000) is another origin."""
    port = served.api_port
    for origin in ("http://127.0.0.1:%d" % (port + 1), "http://localhost:%d" % port, "https://127.0.0.1:%d" % port,
                   "http://127.0.0.1"):
        assert refused(served, {"Origin": origin}) == (403, "forbidden_origin"), origin
    assert served.api("GET", "/pools")[1]["pools"] == []


def test_the_masters_own_pages_and_clients_without_an_origin_still_submit(served):
    port = served.api_port
    assert served.api("POST", "/job", {"cmd": "true", "workers": ["pi1"]})[0] == 202               # curl, the CLI
    for host, origin in (("127.0.0.1:%d" % port, "http://127.0.0.1:%d" % port),
                         ("localhost:%d" % port, "http://LOCALHOST:%d" % port),
                         ("[::1]:%d" % port, "http://[::1]:%d" % port),
                         ("127.0.0.2:%d" % port, "http://127.0.0.2:%d" % port),
                         ("localhost:9000", "http://localhost:9000")):       # an ssh -L tunnel's port
        status, _ = served.api("POST", "/job", {"cmd": "true", "workers": ["pi1"]},
                               headers={"Host": host, "Origin": origin})
        assert status == 202, (host, origin)


# -- a real browser ----------------------------------------------------------------------------

EVIL_PAGE = """<!doctype html><title>evil</title><script>
fetch("http://127.0.0.1:%(port)d/job", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({cmd: "echo pwned", workers: ["pi1"]})})
  .then(() => { document.title = "sent"; }, (e) => { document.title = "failed " + e; });
</script>"""


@pytest.fixture
def evil_site():
    """A page on 127.0.0.2 that a browser reaches as http://127.0.0.1.evil.test:PORT/."""
    pages = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):   # noqa: N802 (the name http.server calls)
            body = pages["/"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pages, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@requires_browser
def test_a_page_from_a_look_alike_name_in_a_real_browser_cannot_run_a_job(served, evil_site):
    pages, site_port = evil_site
    pages["/"] = EVIL_PAGE % {"port": served.api_port}
    driver = browser.start(arguments=["--host-resolver-rules=MAP 127.0.0.1.evil.test 127.0.0.2"])
    try:
        driver.get("http://127.0.0.1.evil.test:%d/" % site_port)
        wait_until(lambda: driver.title != "evil", what="the page's POST answered")
        assert driver.title == "sent"       # an opaque answer: the browser did send it
    finally:
        driver.quit()
    refusal = "INFO pcci.audit: POST /job by - from 127.0.0.1 -> 403 forbidden_origin"
    wait_until(lambda: refusal in served.master.log(), what="the refusal's audit line")
    assert served.api("GET", "/pools")[1]["pools"] == []
