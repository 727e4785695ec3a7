"""Pool notifications from a real master (tests/harness.py) to a real HTTP receiver on
loopback: signed, retried from the outbox, recorded, and refused off notify_allow."""

import hashlib
import hmac
import json

import gevent
import gevent.pywsgi
import pytest

from pcci.master.openapi import SPEC

SECRET = "receiver-secret-0123456789"
LOOPBACK_ALLOWED = {"notify_allow": ["127.0.0.0/8"], "notify_retry": "0.1s"}


class Receiver:
    """An HTTP server on loopback that answers the first ``failures`` POSTs with 500 (or
    ``answer``), then 200, and keeps what it got."""

    def __init__(self, failures=0, answer=(500, [])):
        self.failures, self.answer = failures, answer
        self.got = []
        self.server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_port

    def app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        self.got.append(({key[5:].replace("_", "-").title(): value for key, value in environ.items()
                          if key.startswith("HTTP_")}, body, environ["PATH_INFO"]))
        if len(self.got) <= self.failures:
            status, headers = self.answer
            start_response("%d Nope" % status, headers)
            return [b"not yet"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def stop(self):
        self.server.stop()


@pytest.fixture
def receiver():
    made = []

    def start(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]
    yield start
    for server in made:
        server.stop()


def verified(headers, body):
    """What a receiver does (docs/api.md): recompute the signature over timestamp and body."""
    timestamp = headers["X-Pcci-Timestamp"]
    expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Pcci-Signature"])


def submit(master, cmd, notify, **fields):
    status, answer = master.api("POST", "/job", dict(fields, cmd=cmd, workers=["w1"], notify=notify))
    assert status == 202, answer
    return answer["id"]


def notifications(master, pool_id, done=lambda n: n["state"] in ("sent", "failed", "skipped"), count=1):
    def settled():
        pool = master.api("GET", "/pool/%s" % pool_id)[1]
        shown = pool.get("notifications") or []
        return shown if len(shown) == count and all(done(n) for n in shown) else None
    return master.wait_until(settled, timeout=20, what="notifications of %s settled" % pool_id)


def test_a_failing_receiver_gets_the_signed_summary_again_until_it_accepts(in_process, receiver):
    master = in_process(**LOOPBACK_ALLOWED)
    master.start_worker("w1")
    hook = receiver(failures=2)
    pool_id = submit(master, "exit 3", [{"url": hook.url, "on": ["failed"], "secret": SECRET}])
    (shown,) = notifications(master, pool_id)
    assert shown["state"] == "sent"
    assert [attempt.get("status") for attempt in shown["attempts"]] == [500, 500, 200]
    assert shown["url"] == hook.url and shown["on"] == ["failed"] and "secret" not in shown
    assert len(hook.got) == 3
    deliveries = {headers["X-Pcci-Delivery"] for headers, _, _ in hook.got}
    assert deliveries == {shown["id"]}                    # one id on every attempt: receivers dedupe on it
    for headers, body, path in hook.got:
        assert verified(headers, body) and path == "/hook"
        assert headers["X-Pcci-Event"] == "failed"
        summary = json.loads(body)
        assert summary["pool"]["id"] == pool_id and summary["pool"]["exitCode"] == 3
        assert summary["pool"]["notSucceeded"] == ["w1"] and summary["delivery"] == shown["id"]
    tampered = hook.got[0][1].replace(b'"exitCode":3', b'"exitCode":0')
    assert not verified(hook.got[0][0], tampered)
    pool = master.api("GET", "/pool/%s" % pool_id)[1]
    assert SECRET not in json.dumps(pool)
    described = SPEC["components"]["schemas"]["Pool"]["properties"]["notifications"]["items"]
    assert set(shown) == set(described["required"]) == set(described["properties"])
    assert all(set(attempt) <= set(described["properties"]["attempts"]["items"]["properties"])
               for attempt in shown["attempts"])


def test_only_notifications_whose_on_matches_the_outcome_are_sent(in_process, receiver):
    master = in_process(**LOOPBACK_ALLOWED)
    master.start_worker("w1")
    hook = receiver()
    pool_id = submit(master, "true", [{"url": hook.url + "/failed", "on": ["failed"]},
                                      {"url": hook.url + "/done", "on": ["done"]},
                                      {"url": hook.url + "/any", "on": ["finished"]}])
    shown = notifications(master, pool_id, count=3)
    assert [n["state"] for n in shown] == ["skipped", "sent", "sent"]
    assert sorted(path for _, _, path in hook.got) == ["/hook/any", "/hook/done"]
    assert all("X-Pcci-Signature" not in headers for headers, _, _ in hook.got)    # no secret, no signature


def test_a_read_only_token_sees_where_a_notification_goes_but_not_its_path(in_process, receiver):
    tokens = [{"name": "ops", "scope": "operate", "token": "o" * 32}, {"name": "look", "scope": "read",
                                                                      "token": "r" * 32}]
    master = in_process(api_tokens=tokens, **LOOPBACK_ALLOWED)
    master.start_worker("w1")
    hook = receiver()
    pool_id = submit(master, "false", [{"url": hook.url + "/T0KEN", "secret": SECRET}])
    notifications(master, pool_id)
    (shown,) = master.api("GET", "/pool/%s" % pool_id, token="r" * 32)[1]["notifications"]
    assert "T0KEN" not in shown["url"] and shown["url"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:9/",
    "http://2130706433/", "http://0177.0.0.1/", "http://hooks.example@127.0.0.1/services/",
    "https://hooks.example/services-evil/", "http://hooks.example/services/", "http://localhost:9/",
])
def test_a_token_holder_cannot_aim_a_notification_off_the_allow_list(in_process, url):
    master = in_process(notify_allow=["https://hooks.example/services/"])
    status, answer = master.api("POST", "/job", {"cmd": "true", "notify": [{"url": url}]})
    assert status == 400 and answer["error"]["code"] == "notify_not_allowed", answer
    assert master.api("GET", "/pools")[1]["pools"] == []


def test_without_notify_allow_notifications_are_refused_with_the_reason(in_process):
    master = in_process()
    status, answer = master.api("POST", "/copy", {"dest": "/tmp/x", "content": "",
                                                  "notify": [{"url": "https://hooks.example/"}]})
    assert status == 400 and "notify_allow is empty" in answer["error"]["message"]


def test_a_listed_name_that_resolves_to_loopback_is_not_connected_to(in_process, receiver):
    hook = receiver()
    port = hook.server.server_port
    master = in_process(notify_allow=["http://localhost:%d/hook" % port], notify_retry="30s")
    master.start_worker("w1")
    pool_id = submit(master, "false", [{"url": "http://localhost:%d/hook" % port}])
    (shown,) = notifications(master, pool_id, done=lambda n: n["attempts"])
    assert shown["state"] == "pending" and "loopback" in shown["attempts"][0]["error"]
    assert hook.got == []


def test_redirects_are_not_followed_unless_allowed_and_then_checked(in_process, receiver):
    metadata = receiver(failures=1, answer=(307, [("Location", "http://169.254.169.254/latest/")]))
    master = in_process(notify_allow=["127.0.0.0/8"], notify_retry="30s")
    master.start_worker("w1")
    (shown,) = notifications(master, submit(master, "false", [{"url": metadata.url}]), done=lambda n: n["attempts"])
    assert shown["attempts"][0]["status"] == 307 and shown["state"] == "pending"


def test_a_followed_redirect_is_checked_like_the_first_url(in_process, receiver):
    metadata = receiver(failures=1, answer=(307, [("Location", "http://169.254.169.254/latest/")]))
    master = in_process(notify_allow=["127.0.0.0/8"], notify_retry="30s", notify_redirects=2)
    master.start_worker("w1")
    (shown,) = notifications(master, submit(master, "false", [{"url": metadata.url}]), done=lambda n: n["attempts"])
    assert "169.254.169.254" in shown["attempts"][0]["error"] and "link-local" in shown["attempts"][0]["error"]
    assert len(metadata.got) == 1


def test_a_pool_whose_end_was_saved_before_its_notifications_were_armed_is_notified_at_start(tmp_path, receiver):
    """A master that stopped between saving a pool's end and arming its notifications: the
    next one finds the rows waiting for a pool that has ended, and sends them."""
    import os
    import sqlite3
    from harness import InProcessMaster
    hook = receiver()
    first = InProcessMaster(tmp_path, **LOOPBACK_ALLOWED)
    try:
        first.start_worker("w1")
        pool_id = submit(first, "false", [{"url": hook.url}])
        notifications(first, pool_id)
    finally:
        first.stop()
    database = sqlite3.connect(os.path.join(str(tmp_path), "master-state", "pcci.sqlite3"))
    with database:
        database.execute("UPDATE notify_outbox SET state = 'waiting', body = NULL, attempts = '[]', next_at = NULL")
    database.close()
    del hook.got[:]
    second = InProcessMaster(tmp_path, **LOOPBACK_ALLOWED)
    try:
        (shown,) = notifications(second, pool_id)
        assert shown["state"] == "sent" and len(shown["attempts"]) == 1
        assert len(hook.got) == 1 and json.loads(hook.got[0][1])["pool"]["id"] == pool_id
    finally:
        second.stop()


def test_https_goes_to_the_checked_address_with_the_urls_name_for_sni_and_the_certificate(tmp_path):
    """The name is resolved once (here by a stand-in resolver) and the socket pinned to the
    address checked; the Host header, the TLS server name and the certificate check keep
    the URL's name. The receiver is the standard library's, on a thread of its own."""
    import http.server
    import ipaddress
    import ssl
    import threading
    from pcci import tls
    from pcci.master import notify_send
    from pcci.master.notify_allow import allow_list, parse_url
    cert, key = str(tmp_path / "hooks.crt"), str(tmp_path / "hooks.key")
    tls.ensure_certificate(cert, key, "hooks.test", extra_names=["hooks.test"])
    server_names, hosts = [], []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda sock, name, context: server_names.append(name)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_port
        client_context = notify_send.tls_context()
        client_context.load_verify_locations(cert)
        allow = allow_list(["127.0.0.0/8"])
        lookups = []

        def resolver(host, port):
            lookups.append(host)
            return [ipaddress.ip_address("127.0.0.1")]
        status = notify_send.post(parse_url("https://hooks.test:%d/hook" % port), b"{}", {}, allow, 5,
                                  resolver=resolver, context=client_context)
        assert status == 204 and lookups == ["hooks.test"]
        assert server_names == ["hooks.test"] and hosts == ["hooks.test:%d" % port]
        with pytest.raises(notify_send.AttemptFailed, match="certificate"):
            notify_send.post(parse_url("https://other.test:%d/hook" % port), b"{}", {}, allow, 5,
                             resolver=resolver, context=client_context)
    finally:
        server.shutdown()
        server.server_close()
