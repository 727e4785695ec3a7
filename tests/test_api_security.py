"""Token names and scopes, the audit log, env values hidden from readers, token rotation on
SIGHUP, and limits that keep a master answering under connection floods and slow clients,
against a real master and worker."""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import KEY, start_in_namespace, wait_until

READER = "reader-" + "r" * 20
OPERATOR = "operator-" + "o" * 20


@pytest.fixture
def scoped(cluster):
    cluster.start_master(api_tokens=[{"name": "viewer", "scope": "read", "token": READER},
                                     {"name": "alice", "scope": "operate", "token": OPERATOR}])
    cluster.start_worker("pi1")
    return cluster


def audit_lines(cluster):
    return [line for line in cluster.master.log().splitlines() if line.startswith("INFO pcci.audit:")]


def test_a_read_token_reads_but_cannot_submit_or_kill(scoped):
    status, body = scoped.api("POST", "/job", {"cmd": "touch /tmp/never"}, token=READER)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    assert "token viewer has scope read; POST /job needs operate" == body["error"]["message"]
    assert scoped.api("GET", "/pools", token=READER)[1]["pools"] == []
    status, submitted = scoped.api("POST", "/job", {"cmd": "sleep 30", "workers": ["pi1"]}, token=OPERATOR)
    assert status == 202
    scoped.wait_running(submitted["id"], "pi1")
    status, body = scoped.api("PUT", "/kill/%s" % submitted["id"], token=READER)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    assert scoped.api("GET", "/pool/%s" % submitted["id"], token=READER)[1]["jobs"]["pi1"]["state"] == "running"
    assert scoped.api("PUT", "/kill/%s" % submitted["id"], token=OPERATOR)[1]["workers"] == {"pi1": "signalled"}
    pool = scoped.api("GET", "/pool/%s?wait=10" % submitted["id"], token=READER)[1]
    assert pool["jobs"]["pi1"]["state"] == "killed"
    assert (pool["submittedBy"], pool["submittedFrom"], pool["killedBy"]) == ("alice", "127.0.0.1", "alice")


def test_the_refusal_says_which_scope_is_needed_in_the_header(scoped):
    request = urllib.request.Request("http://127.0.0.1:%d/job" % scoped.api_port, data=b'{"cmd": "true"}',
                                     method="POST", headers={"Authorization": "Bearer " + READER})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="pcci", error="insufficient_scope"'


def test_env_values_are_hidden_from_read_tokens(scoped):
    status, submitted = scoped.api("POST", "/job", {"cmd": "true", "workers": ["pi1"],
                                                    "env": {"DB_PASSWORD": "hunter2-secret"}}, token=OPERATOR)
    assert status == 202
    seen_by_reader = scoped.api("GET", "/pool/%s?wait=10" % submitted["id"], token=READER)[1]
    assert seen_by_reader["env"] == {"DB_PASSWORD": None}
    assert "hunter2-secret" not in json.dumps(seen_by_reader)
    assert "hunter2-secret" not in json.dumps(scoped.api("GET", "/pools", token=READER)[1])
    assert scoped.api("GET", "/pool/%s" % submitted["id"], token=OPERATOR)[1]["env"] == {"DB_PASSWORD": "hunter2-secret"}


def test_every_state_changing_call_writes_one_audit_line(scoped):
    before = len(audit_lines(scoped))
    status, submitted = scoped.api("POST", "/job", {"cmd": "echo audited", "workers": ["pi1"]}, token=OPERATOR)
    scoped.api("POST", "/job", {"cmd": "true"}, token=READER)                     # refused: scope
    scoped.api("POST", "/job", {"cmd": "true"}, token="stolen-" + "s" * 20)       # refused: bad token
    scoped.api("PUT", "/kill/%s" % submitted["id"], token=OPERATOR)
    scoped.api("GET", "/pools", token=READER)                                     # a read: no audit line
    wait_until(lambda: len(audit_lines(scoped)) - before >= 4, what="four audit lines")
    lines = audit_lines(scoped)[before:]
    assert len(lines) == 4
    assert lines[0].startswith("INFO pcci.audit: POST /job by alice from 127.0.0.1 -> 202 (pool %s on 1 worker(s): "
                               "echo audited)" % submitted["id"])
    assert lines[1] == "INFO pcci.audit: POST /job by viewer from 127.0.0.1 -> 403 insufficient_scope"
    assert lines[2] == "INFO pcci.audit: POST /job by - from 127.0.0.1 -> 401 bad_token"
    assert lines[3].startswith("INFO pcci.audit: PUT /kill/%s by alice from 127.0.0.1 -> 200" % submitted["id"])
    assert not any("s" * 20 in line or OPERATOR in line for line in scoped.master.log().splitlines())


def test_tokens_rotate_on_sighup_and_a_bad_file_keeps_the_old_ones(cluster, tmp_path):
    tokens_file = tmp_path / "api-tokens"
    old, new = "old-" + "a" * 20, "new-" + "b" * 20
    tokens_file.write_text("%s ci operate\n" % old)
    tokens_file.chmod(0o600)
    cluster.start_master(api_tokens_file=str(tokens_file))
    assert cluster.api("GET", "/pools", token=old)[0] == 200
    tokens_file.write_text("%s ci operate\n" % new)
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: cluster.api("GET", "/pools", token=new)[0] == 200, what="the new token accepted")
    assert cluster.api("GET", "/pools", token=old)[0] == 401
    assert "reload: 1 API token(s): ci (operate)" in cluster.master.log()
    for broken in ("short\n", "# nothing\n"):
        tokens_file.write_text(broken)
        cluster.master.signal(signal.SIGHUP)
        wait_until(lambda: cluster.master.log().count("reload: kept the API tokens in use") >= 1 + (broken[0] == "#"),
                   what="the refused reload logged")
        assert cluster.api("GET", "/pools", token=new)[0] == 200
    assert cluster.master.process.poll() is None


def _connect_from(address, port):
    sock = socket.socket()
    sock.bind((address, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def open_descriptors(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_a_flood_of_idle_connections_cannot_take_the_masters_descriptors(cluster):
    """Observed before: 20,100 idle connections on the worker port filled the master's
    descriptor table and /health stopped answering."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # As many as this process may open (the master has the same limit): enough to fill its table.
    count = min(20100, hard - 600)
    cluster.start_master(handshake_timeout="30s", max_handshakes=1000, max_handshakes_per_address=64,
                         api_max_connections=500, api_max_connections_per_address=64)
    cluster.start_worker("pi1")
    flood = []
    try:
        for n in range(count):
            try:
                flood.append(_connect_from("127.0.%d.%d" % (2 + n // 200, 1 + n % 200), cluster.worker_port))
            except OSError:
                pass
        for n in range(400):    # and the API port, from few addresses
            try:
                flood.append(_connect_from("127.0.100.%d" % (1 + n % 4), cluster.api_port))
            except OSError:
                pass
        assert len(flood) > count * 0.95, "the flood itself reached the master's ports"
        assert cluster.api("GET", "/health", timeout=10)[0] == 200
        held = open_descriptors(cluster.master.process.pid)
        assert held < 1000 + 4 * 64 + 200, "the master holds %d descriptors" % held
        # The worker that was online before the flood stays online and works.
        assert cluster.run("echo through the flood", ["pi1"])["jobs"]["pi1"]["stdout"] == "through the flood\n"
    finally:
        for sock in flood:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "worker connection from" in cluster.master.log() and "refused" in cluster.master.log()
    assert "API connection from 127.0.100." in cluster.master.log()


def test_a_client_sending_its_request_head_a_byte_at_a_time_is_dropped(cluster):
    """Observed before: one header byte every 20 s kept an API connection open forever."""
    cluster.start_master(api_head_timeout="2s", api_idle_timeout="60s")
    sock = socket.create_connection(("127.0.0.1", cluster.api_port), timeout=10)
    started = time.monotonic()
    closed = False
    try:
        for byte in b"GET /pools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            sock.sendall(bytes([byte]))
            time.sleep(0.5)
            if time.monotonic() - started > 15:
                break
    except OSError:
        closed = True
    if not closed:
        sock.settimeout(5)
        try:
            closed = sock.recv(100) in (b"",) or True
        except OSError:
            closed = True
    sock.close()
    assert closed and time.monotonic() - started < 10, "a slow head kept its connection %.1fs" % (
        time.monotonic() - started)
    assert cluster.api("GET", "/health")[0] == 200


def test_off_loopback_the_api_is_https_with_a_certificate_the_master_made(netbed, tmp_path):
    master_ns = netbed._attach("m", 1)
    token = "https-" + "h" * 20
    state = tmp_path / "master-state"
    start_in_namespace(netbed, master_ns, "master", str(tmp_path / "master"), {
        "cluster_key": KEY, "state_dir": str(state), "api_host": "0.0.0.0", "api_tokens": [token]})
    cert = state / "tls" / "api.crt"
    wait_until(cert.exists, timeout=20, what="the API certificate made")

    def curl(*args):
        return netbed.client("curl", "-sS", "--max-time", "10", "-H", "Authorization: Bearer " + token, *args)
    wait_until(lambda: curl("--cacert", str(cert), "https://10.213.7.1:8080/health").returncode == 0, timeout=20,
               what="https answers, checked against the made certificate")
    assert json.loads(curl("--cacert", str(cert), "https://10.213.7.1:8080/workers").stdout) == {"workers": []}
    assert curl("http://10.213.7.1:8080/health").returncode != 0        # no plain http off loopback
    assert curl("https://10.213.7.1:8080/health").returncode != 0      # an unknown CA is refused by curl
    assert (os.stat(state / "tls" / "api.key").st_mode & 0o077) == 0


def test_plain_http_off_loopback_takes_an_explicit_option_and_is_warned(netbed, tmp_path):
    master_ns = netbed._attach("m", 1)
    token = "plain-" + "p" * 20
    master = start_in_namespace(netbed, master_ns, "master", str(tmp_path / "master"), {
        "cluster_key": KEY, "state_dir": str(tmp_path / "state"), "api_host": "0.0.0.0", "api_tokens": [token],
        "api_plain_http": True})
    wait_until(lambda: netbed.api("10.213.7.1", "GET", "/health", token)[0] == 200, timeout=20, what="http answers")
    assert "api_plain_http is true: the API on 0.0.0.0 is plain HTTP" in master.log()
    assert not (tmp_path / "state" / "tls" / "api.crt").exists()


def test_check_config_accepts_scoped_tokens_and_names_a_bad_one(tmp_path):
    path = tmp_path / "master.yaml"
    path.write_text("cluster_key: %s\napi_tokens:\n  - {name: ci, scope: operate, token: %s}\n"
                    "  - {name: x, scope: root, token: %s}\n" % (KEY, "c" * 20, "d" * 20))
    result = subprocess.run([sys.executable, "-m", "pcci", "check-config", "master", str(path)], capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))
    assert result.returncode == 1
    assert "api_tokens: token x: scope 'root' must be one of read, operate, admin" in result.stderr
    # Every problem at once: the file holds secrets and every user may read it.
    assert "cluster_key: %s is readable by every user (mode 0644); it holds a secret: move it to " \
           "cluster_key_file, or make it private: chmod o-rwx" % path in result.stderr
    assert "d" * 20 not in result.stderr and KEY not in result.stderr
