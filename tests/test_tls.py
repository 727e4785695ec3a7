"""TLS on the REST API and on the worker port, with a certificate the test makes with openssl."""

import json
import shutil
import ssl
import subprocess
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_api_and_worker_port_over_tls(cluster, certificate):
    cert, key = certificate
    token = "tls-token-" + "q" * 16
    settings = dict(api_tls_cert=cert, api_tls_key=key, worker_tls_cert=cert, worker_tls_key=key,
                    api_tokens=[token])
    cluster._healthy = lambda: _https(cluster.api_port, "/health", cert)[0] == 200
    cluster.start_master(**settings)
    worker = cluster.start_worker("pi1", wait=False, master_ca_file=cert)

    def online():
        body = _https(cluster.api_port, "/workers", cert, token)[1]
        return [w for w in body["workers"] if w["online"]]
    from conftest import wait_until
    wait_until(online, what="worker online over TLS")
    status, submitted = _https(cluster.api_port, "/job", cert, token, {"cmd": "echo secret", "workers": ["pi1"]})
    assert status == 202
    status, pool = _https(cluster.api_port, "/pool/%s?wait=20" % submitted["id"], cert, token)
    assert pool["jobs"]["pi1"]["stdout"] == "secret\n"
    assert worker.process.poll() is None


def test_a_worker_given_a_ca_file_or_a_pin_refuses_a_master_that_does_not_match(cluster, certificate, tmp_path):
    from conftest import self_signed, wait_until
    cert, key = certificate
    other_cert, _ = self_signed(str(tmp_path), "other")
    cluster._healthy = lambda: _https(cluster.api_port, "/health", cert)[0] == 200
    cluster.start_master(worker_tls_cert=cert, worker_tls_key=key, api_tls_cert=cert, api_tls_key=key)
    by_ca = cluster.start_worker("pi1", wait=False, master_ca_file=other_cert)
    wrong_pin = "sha256:" + "00" * 32
    by_pin = cluster.start_worker("pi2", wait=False, master_fingerprint=wrong_pin)
    wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in by_ca.log(), what="verification failure logged")
    wait_until(lambda: "not the pinned master_fingerprint %s" % wrong_pin in by_pin.log(), what="pin refusal logged")
    workers = _https(cluster.api_port, "/workers", cert)[1]["workers"]
    assert [w["name"] for w in workers] == []
    # The right pin (what `openssl x509 -noout -fingerprint -sha256` prints) is accepted.
    printed = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert],
                             capture_output=True, text=True, check=True).stdout
    cluster.start_worker("pi3", wait=False, master_fingerprint=printed.strip().split("=", 1)[1])
    wait_until(lambda: [w for w in _https(cluster.api_port, "/workers", cert)[1]["workers"] if w["online"]],
               what="pinned worker online")


def _https(port, path, cafile, token=None, body=None):
    context = ssl.create_default_context(cafile=cafile)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request("https://127.0.0.1:%d%s" % (port, path), data=data,
                                     method="POST" if body is not None else "GET")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None, None


def test_the_cli_checks_an_https_master_by_ca_file_or_by_pinned_fingerprint(cluster, certificate, tmp_path):
    import os
    import sys
    from conftest import REPO
    from pcci import tls
    cert, key = certificate
    token = "pin-token-" + "p" * 16
    cluster._healthy = lambda: _https(cluster.api_port, "/health", cert)[0] == 200
    cluster.start_master(api_tls_cert=cert, api_tls_key=key, api_tokens=[token])
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    url = "https://127.0.0.1:%d" % cluster.api_port

    def pcci(*args):
        return subprocess.run([sys.executable, "-m", "pcci", "pools", "--url", url, "--token-file", str(token_file),
                               *args], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PYTHONPATH=REPO))
    assert pcci("--cacert", cert).returncode == 0
    right = pcci("--fingerprint", tls.file_fingerprint(cert).upper().replace("SHA256:", "sha256:"))
    assert right.returncode == 0, right.stderr
    wrong = pcci("--fingerprint", "sha256:" + "0" * 64)
    assert wrong.returncode == 69 and "not the pinned sha256:" + "0" * 64 in wrong.stderr
    assert pcci().returncode == 69           # neither: the system CAs do not know a self-signed certificate


def test_a_plaintext_worker_and_a_tls_master_each_say_what_to_change(cluster):
    from conftest import wait_until
    cluster.start_master()
    worker = cluster.start_worker("old-config", wait=False, master_tls=False)
    wait_until(lambda: "this worker has master_tls: false: does the master speak TLS" in worker.log(),
               what="the worker's hint")
    assert "PLAINTEXT" in worker.log()
    wait_until(lambda: "TLS handshake failed" in cluster.master.log() and
               "every worker needs master_tls: true" in cluster.master.log(), what="the master's hint")
    assert cluster.api("GET", "/workers")[1]["workers"] == []
