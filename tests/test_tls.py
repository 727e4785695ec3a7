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
    worker = cluster.start_worker("pi1", wait=False, master_tls=True, master_ca_file=cert)

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


def test_worker_refuses_a_master_whose_certificate_it_cannot_verify(cluster, certificate, tmp_path):
    cert, key = certificate
    cluster._healthy = lambda: _https(cluster.api_port, "/health", cert)[0] == 200
    cluster.start_master(worker_tls_cert=cert, worker_tls_key=key, api_tls_cert=cert, api_tls_key=key)
    worker = cluster.start_worker("pi1", wait=False, master_tls=True)   # no CA file: system CAs only
    from conftest import wait_until
    wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in worker.log(), what="verification failure logged")


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
