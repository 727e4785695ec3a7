"""Notifications under an operator's limits, from a real master to real receivers on
loopback: the outbox's cap per API token and in all (one token cannot lock the others
out), notify_allow reloaded on SIGHUP, and https receivers checked against notify_tls_ca."""

import http.server
import os
import signal
import ssl
import subprocess
import threading

import pytest
import yaml

from conftest import wait_until
from test_notify import notifications, receiver  # noqa: F401 (fixture)

TOKENS = {name: "%s-%s" % (name, "k" * 20) for name in ("mallory", "mallet", "alice", "root")}
SCOPES = {"mallory": "operate", "mallet": "operate", "alice": "operate", "root": "admin"}


def post_job(master, who, url, cmd="false"):
    return master.api("POST", "/job", {"cmd": cmd, "workers": ["w1"], "notify": [{"url": url}]},
                      token=TOKENS[who])


def test_one_token_fills_only_its_own_share_of_the_outbox_and_never_an_admins(in_process, receiver):  # noqa: F811
    """The attack: an operate token's pools notify a receiver that never accepts, so their
    rows stay unsent. Alone it fills its own cap; it takes notify_max_unsent /
    notify_max_unsent_per_token tokens to refuse other operate tokens, and never an admin's."""
    master = in_process(api_tokens=[{"name": n, "scope": SCOPES[n], "token": t} for n, t in TOKENS.items()],
                        notify_allow=["127.0.0.0/8"], notify_retry="30s", notify_max_unsent_per_token=2,
                        notify_max_unsent=4)
    master.start_worker("w1")
    down, up = receiver(failures=10 ** 6), receiver()
    for _ in range(2):
        assert post_job(master, "mallory", down.url)[0] == 202
    status, answer = post_job(master, "mallory", down.url)
    assert status == 503 and answer["error"]["code"] == "outbox_full", answer
    assert "token mallory's pools" in answer["error"]["message"]

    status, answer = post_job(master, "alice", up.url)
    assert status == 202, answer
    assert notifications(master, answer["id"])[0]["state"] == "sent"

    for _ in range(2):                                          # a second token of the attacker's: the total
        assert post_job(master, "mallet", down.url)[0] == 202
    status, answer = post_job(master, "alice", up.url)
    assert status == 503 and "(at most 4 in all)" in answer["error"]["message"], answer
    status, answer = post_job(master, "root", up.url)
    assert status == 202, answer
    assert notifications(master, answer["id"])[0]["state"] == "sent"
    assert post_job(master, "alice", up.url, cmd="true")[0] == 503   # pools without notify: unaffected
    assert master.api("POST", "/job", {"cmd": "true", "workers": ["w1"]}, token=TOKENS["alice"])[0] == 202
    assert len(up.got) == 2


class ThreadedReceiver:
    """A receiver on a thread of its own, for tests whose master is another process (their
    waits sleep without yielding to gevent): answers ``status`` to every POST."""

    def __init__(self, status, tls_files=None):
        got = self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_files is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls_files)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def threaded_receivers():
    made = []
    yield lambda *args: made.append(ThreadedReceiver(*args)) or made[-1]
    for server in made:
        server.stop()


def rewrite(service, **changes):
    """The service's config file with ``changes``, as an operator edits it before a reload."""
    service.settings.update(changes)
    with open(service.config_path, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        yaml.safe_dump(service.settings, handle)


@pytest.mark.process
def test_notify_allow_is_reloaded_on_sighup_and_a_bad_list_keeps_the_one_in_use(cluster, threaded_receivers):
    cluster.start_master(notify_retry="1s")
    cluster.start_worker("w1")
    hook, down = threaded_receivers(200), threaded_receivers(500)
    job = {"cmd": "false", "workers": ["w1"], "notify": [{"url": hook.url}]}
    status, answer = cluster.api("POST", "/job", job)
    assert status == 400 and "notify_allow is empty" in answer["error"]["message"]

    rewrite(cluster.master, notify_allow=["127.0.0.0/8"])
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: "reload: notify_allow: 0 URL prefix(es), 1 network(s)" in cluster.master.log(),
               what="the new notify_allow logged")
    status, answer = cluster.api("POST", "/job", job)
    assert status == 202, answer
    assert notifications(cluster, answer["id"])[0]["state"] == "sent"

    rewrite(cluster.master, notify_allow=["127.0.0.0/33"])
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: "reload: kept the settings in use" in cluster.master.log(), what="the refused reload logged")
    reloads = [line for line in cluster.master.log().splitlines()
               if "reload: notify_allow" in line or "reload: kept the settings" in line]
    assert len(reloads) == 2 and "notify_allow: '127.0.0.0/33'" in reloads[1], reloads
    status, answer = cluster.api("POST", "/job", job)
    assert status == 202, answer
    assert notifications(cluster, answer["id"])[0]["state"] == "sent"

    status, answer = cluster.api("POST", "/job", dict(job, notify=[{"url": down.url}]))
    assert status == 202, answer
    pool_id = answer["id"]
    notifications(cluster, pool_id, done=lambda n: n["attempts"])
    rewrite(cluster.master, notify_allow=["10.0.5.0/24"])              # loopback no longer allowed
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: "reload: notify_allow: 0 URL prefix(es), 1 network(s)" in cluster.master.log().split(
        "reload: kept the settings in use")[-1], what="the second notify_allow logged")
    # A notification already queued is checked against the new list at its next attempt.
    (shown,) = notifications(cluster, pool_id, done=lambda n: any("notify_allow" in (a.get("error") or "")
                                                                  for a in n["attempts"]))
    assert "loopback" in shown["attempts"][-1]["error"]
    assert cluster.api("POST", "/job", job)[0] == 400
    assert cluster.master.process.poll() is None


def make_ca(directory, name):
    """A CA (its certificate and key) made with openssl, as an operator's private CA."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
                   check=True, capture_output=True)
    return cert, key


def sign(directory, ca, host):
    """A server certificate for ``host`` signed by ``ca``."""
    cert, key, request = (os.path.join(directory, host + suffix) for suffix in (".crt", ".key", ".csr"))
    extensions = os.path.join(directory, host + ".ext")
    with open(extensions, "w") as handle:
        handle.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n" % host)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", request, "-subj", "/CN=" + host], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", extensions], check=True, capture_output=True)
    return cert, key


def test_https_receivers_are_checked_against_notify_tls_ca_instead_of_the_systems(in_process, tmp_path,
                                                                                  threaded_receivers):
    from harness import InProcessMaster
    ca, other_ca = make_ca(str(tmp_path), "hooks-ca"), make_ca(str(tmp_path), "other-ca")
    cert, key = sign(str(tmp_path), ca, "localhost")
    hook = threaded_receivers(204, (cert, key))
    got = hook.got
    url = "https://localhost:%d/hook" % hook.server.server_port
    # A short retry: the test's threaded TLS receiver once dropped a first handshake (EOF)
    # in a loaded full run; what is checked is which CA each master trusts, on any attempt.
    settings = {"notify_allow": ["127.0.0.0/8"], "notify_retry": "1s"}
    second = None
    try:
        master = in_process(notify_tls_ca=ca[0], **settings)
        master.start_worker("w1")
        status, answer = master.api("POST", "/job", {"cmd": "false", "workers": ["w1"], "notify": [{"url": url}]})
        assert status == 202, answer
        (shown,) = notifications(master, answer["id"])
        assert shown["state"] == "sent" and shown["attempts"][-1]["status"] == 204 and len(got) == 1
        assert not any("certificate" in (attempt.get("error") or "") for attempt in shown["attempts"]), shown

        second = InProcessMaster(tmp_path / "second", notify_tls_ca=other_ca[0], **settings)
        second.start_worker("w1")
        status, answer = second.api("POST", "/job", {"cmd": "false", "workers": ["w1"], "notify": [{"url": url}]})
        (shown,) = notifications(second, answer["id"],
                                 done=lambda n: any("certificate" in (a.get("error") or "") for a in n["attempts"]))
        assert shown["state"] == "pending" and all(attempt.get("status") is None for attempt in shown["attempts"])
        assert len(got) == 1
    finally:
        if second is not None:
            second.stop()
