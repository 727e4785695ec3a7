"""HTTP the master's API refuses at the edge, over a raw socket to a real master: framing
that two parsers could read two ways (request smuggling), header bytes that are not
UTF-8, and mutating calls to no route, which are audited like any other."""

import json
import re
import socket

import pytest

from conftest import wait_until

TOKEN = "http-edge-token-" + "h" * 16


def exchange(cluster, data, timeout=10):
    """Every response the master sends to these bytes before it closes: [(status, headers, body)]."""
    with socket.create_connection(("127.0.0.1", cluster.api_port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    answers = []
    while received:
        head, _, received = received.partition(b"\r\n\r\n")
        match = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)
        length = int(match.group(1)) if match else len(received)
        body, received = received[:length], received[length:]
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        answers.append((int(head.split()[1]), {k.lower(): v for k, v in headers.items()}, body))
    return answers


def error_code(answer):
    status, headers, body = answer
    assert headers.get(b"content-type", b"").startswith(b"application/json"), answer
    return status, json.loads(body)["error"]["code"]


@pytest.fixture
def master(cluster):
    cluster.start_master()
    return cluster


SMUGGLED = b"DELETE /worker/pi1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize("framing", [
    b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n",
    b"Content-Length: %d\r\nContent-Length: 0\r\n",
    b"Content-Length: 0\r\nContent-Length: %d\r\n",
    b"Transfer-Encoding: gzip, chunked\r\nContent-Length: %d\r\n",
    b"Transfer-Encoding: chunked \r\nContent-Length: %d\r\n",
    b"Content-Length: +%d\r\n",
    b"Content-Length: 0_%d\r\n",
])
def test_ambiguous_framing_is_400_and_the_connection_closes(master, framing):
    """Observed before: a body framed one way by a proxy and another by the master was
    answered as the next request (here a DELETE)."""
    body = b"0\r\n\r\n" + SMUGGLED
    request = (b"POST /job HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               + framing % len(body) + b"\r\n" + body)
    answers = exchange(master, request)
    assert [error_code(answer) for answer in answers] == [(400, "malformed_request")]
    assert answers[0][1][b"connection"].lower() == b"close"
    assert "Traceback" not in master.master.log()


def test_equal_content_lengths_and_plain_chunked_bodies_still_work(master):
    body = json.dumps({"cmd": "true"}).encode()
    answers = exchange(master, b"POST /job HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(body), len(body), body))
    assert error_code(answers[0]) == (503, "no_workers_online")        # parsed, and reached the route
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answers = exchange(master, b"POST /job HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: Chunked\r\n\r\n" + chunked)
    assert error_code(answers[0]) == (503, "no_workers_online")


# -- header bytes that are not UTF-8 ------------------------------------------------------------

def get(path, *headers):
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n" % (path, b"".join(
        header + b"\r\n" for header in headers))


@pytest.fixture
def guarded(cluster):
    cluster.start_master(api_tokens=[TOKEN])
    return cluster


def test_non_utf8_header_bytes_are_a_4xx_not_a_500(guarded):
    """Observed before: each of these was a 500 and a traceback in the master's log."""
    bearer = b"Authorization: Bearer " + TOKEN.encode()
    cases = [
        (get(b"/pools", b"Authorization: Bearer \xff\xfe" + b"x" * 20), (401, "bad_token")),
        (get(b"/events", bearer, b"Last-Event-ID: \xff1"), (400, "malformed_request")),            # the SSE path
        (get(b"/pool/00000000/events", bearer, b"Last-Event-ID: 1\xc3"), (400, "malformed_request")),
        (get(b"/ui/app.js", b'If-None-Match: "\xff"'), (400, "malformed_request")),
        (get(b"/", b"If-None-Match: \xe9t\xe9"), (400, "malformed_request")),
    ]
    for request, expected in cases:
        answers = exchange(guarded, request)
        assert [error_code(answer) for answer in answers] == [expected], request
    assert "Traceback" not in guarded.master.log() and "ERROR" not in guarded.master.log()
    assert exchange(guarded, get(b"/pools", bearer))[0][0] == 200       # still serving


def test_non_utf8_host_or_origin_on_a_tokenless_master_is_a_4xx(master):
    post = b"POST /job HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 2\r\n%s\r\n{}"
    for host, origin in ((b"127.0.0.1\xff", b""), (b"127.0.0.1", b"Origin: http://127.0.0.1\xff\r\n")):
        answers = exchange(master, post % (host, origin))
        assert [error_code(answer) for answer in answers] == [(400, "malformed_request")], (host, origin)
    assert "Traceback" not in master.master.log()


# -- the audit log --------------------------------------------------------------------------

OPERATOR = "operator-" + "o" * 20


def audit_lines(cluster):
    return [line for line in cluster.master.log().splitlines() if line.startswith("INFO pcci.audit:")]


def test_mutating_calls_to_no_route_are_audited_with_the_token_name(cluster):
    """Observed before: a 404 or 405 to a POST, PUT or DELETE left no audit line, so probing
    for endpoints with a stolen token went unseen."""
    cluster.start_master(api_tokens=[{"name": "alice", "scope": "operate", "token": OPERATOR}])
    cluster.api("POST", "/nosuch", {"cmd": "true"}, token=OPERATOR)
    cluster.api("DELETE", "/job", token=OPERATOR)                                    # 405
    cluster.api("PUT", "/admin/tokens", {}, token="stolen-" + "s" * 20)
    cluster.api("GET", "/nosuch", token=OPERATOR)                                    # a read: no line
    wait_until(lambda: len(audit_lines(cluster)) >= 3, what="three audit lines")
    assert audit_lines(cluster) == [
        "INFO pcci.audit: POST /nosuch by alice from 127.0.0.1 -> 404 not_found",
        "INFO pcci.audit: DELETE /job by alice from 127.0.0.1 -> 405 method_not_allowed",
        "INFO pcci.audit: PUT /admin/tokens by - from 127.0.0.1 -> 404 not_found"]



def test_a_request_line_over_the_servers_limit_is_a_json_414(master):
    """Observed before: gevent's own 414 with an empty body, the one answer not in JSON."""
    target = "n1," * 3000
    answers = exchange(master, ("GET /workers?target=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % target).encode())
    assert [error_code(answer) for answer in answers] == [(414, "uri_too_long")]
    assert b"POST /job" in answers[0][2]
    assert master.api("GET", "/health")[0] == 200
