"""Without api_tokens the master trusts its loopback callers: these tests are the pages
that must not pass for one (a look-alike host name, another local port), against a real
master and worker."""

import pytest

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
