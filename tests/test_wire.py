"""pcci.client.wire: the client's HTTP/1.1 -- pure parsing, answers over a socketpair,
and real servers on loopback (http.server, a silent listener, a CONNECT proxy)."""

import http.server
import json
import socket
import threading

import pytest
from hypothesis import given, settings, strategies as st

from pcci.client import wire
from pcci.client.wire import BadAnswer


# -- pure ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, parts", [
    ("http://m1", ("http", "m1", 80, "m1", "")),
    ("https://m1:8443/pcci", ("https", "m1", 8443, "m1:8443", "/pcci")),
    ("HTTP://127.0.0.1:8080/pool/x?wait=1", ("http", "127.0.0.1", 8080, "127.0.0.1:8080", "/pool/x?wait=1")),
    ("http://[::1]:8080/health", ("http", "::1", 8080, "[::1]:8080", "/health")),
    ("https://[fe80::1]", ("https", "fe80::1", 443, "[fe80::1]", "")),
])
def test_a_url_splits_into_scheme_host_port_and_path(url, parts):
    assert wire.split_url(url) == parts


@pytest.mark.parametrize("url", ["ftp://m1", "m1:8080", "http://", "http://m1:0", "http://m1:99999",
                                 "http://m1:80x"])
def test_a_url_that_is_not_http_is_refused_with_its_reason(url):
    with pytest.raises(ValueError):
        wire.split_url(url)


def test_a_request_is_one_block_with_host_length_and_close():
    data = wire.request_bytes("POST", "/job?wait=1", "m1:8080", [("Authorization", "Bearer t")], b'{"cmd": "true"}')
    head, body = data.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"POST /job?wait=1 HTTP/1.1", b"Host: m1:8080", b"Accept-Encoding: identity",
                                   b"Connection: close", b"Authorization: Bearer t", b"Content-Length: 15"]
    assert body == b'{"cmd": "true"}'
    assert b"Content-Length: 0\r\n" in wire.request_bytes("PUT", "/kill/x", "m1")
    assert b"Content-Length" not in wire.request_bytes("GET", "/pools", "m1")


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError):
        wire.request_bytes("GET", "/", "m1", [("Authorization", "Bearer t\r\nX-Evil: 1")])


def test_status_and_header_lines_parse_and_garbage_is_a_bad_answer():
    assert wire.parse_status_line(b"HTTP/1.1 307 Temporary Redirect\r\n") == (307, "Temporary Redirect")
    assert wire.parse_status_line(b"HTTP/1.0 200\r\n") == (200, "")
    assert wire.parse_header_line(b"Retry-After:  5 \r\n") == ("Retry-After", "5")
    for line in (b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.1 2000 OK\r\n", b"HTTP/2 200\r\n"):
        with pytest.raises(BadAnswer):
            wire.parse_status_line(line)
    for line in (b"no colon\r\n", b" Folded: x\r\n", b"Bad Name: x\r\n", b": x\r\n"):
        with pytest.raises(BadAnswer):
            wire.parse_header_line(line)


def test_headers_are_found_by_any_case_and_repeats_are_joined():
    headers = wire.Headers([("Location", "/pool/1"), ("X-A", "1"), ("x-a", "2")])
    assert headers.get("location") == headers["LOCATION"] == "/pool/1"
    assert headers.get("X-A") == "1, 2" and headers.get("Retry-After") is None and "x-a" in headers


@pytest.mark.parametrize("method, status, fields, framing", [
    ("GET", 200, [("Content-Length", "12")], ("length", 12)),
    ("GET", 200, [("Content-Length", "12, 12")], ("length", 12)),
    ("GET", 200, [("Transfer-Encoding", "chunked"), ("Content-Length", "3")], ("chunked", None)),
    ("GET", 200, [("Transfer-Encoding", "gzip, chunked")], ("chunked", None)),
    ("GET", 200, [("Transfer-Encoding", "gzip")], ("close", None)),
    ("GET", 200, [], ("close", None)),
    ("HEAD", 200, [("Content-Length", "12")], ("none", 0)),
    ("GET", 204, [], ("none", 0)),
    ("GET", 304, [("Content-Length", "12")], ("none", 0)),
])
def test_the_body_is_framed_as_rfc_9112_orders_it(method, status, fields, framing):
    assert wire.body_framing(method, status, wire.Headers(fields)) == framing


@pytest.mark.parametrize("length", ["12, 13", "+12", "-1", "1_2", "0x10", ""])
def test_a_content_length_that_is_not_one_number_is_a_bad_answer(length):
    with pytest.raises(BadAnswer):
        wire.body_framing("GET", 200, wire.Headers([("Content-Length", length)]))


def test_a_content_length_over_the_bound_is_refused_before_its_body_is_read():
    with pytest.raises(BadAnswer, match="over the client's 100"):
        wire.body_framing("GET", 200, wire.Headers([("Content-Length", "101")]), max_body=100)


def test_chunk_sizes_are_hex_with_extensions_ignored():
    assert wire.parse_chunk_size(b"2c4\r\n") == 708
    assert wire.parse_chunk_size(b"A;name=value\r\n") == 10
    for line in (b"\r\n", b"-1\r\n", b"0x10\r\n", b"g\r\n", b"1" * 17 + b"\r\n"):
        with pytest.raises(BadAnswer):
            wire.parse_chunk_size(line)


# -- answers over a socketpair ----------------------------------------------------------------------
def answer_from(data, method="GET", max_body=wire.MAX_BODY_BYTES):
    """read_answer on the bytes ``data``, sent whole by the other end, which then closes."""
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.close()
    ours.settimeout(5)
    return wire.read_answer(ours, method, max_body)


def chunked(pieces):
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece) + b"0\r\n\r\n"


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_a_chunked_body_reads_back_whole_however_it_is_cut(body, cuts):
    edges = sorted({0, len(body)} | {cut for cut in cuts if cut <= len(body)})
    pieces = [body[start:end] for start, end in zip(edges, edges[1:])]
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with answer_from(head + chunked(pieces)) as answer:
        assert answer.read() == body


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
       size=st.integers(1, 50))
def test_a_streamed_body_gives_its_lines_whole_whatever_the_chunks(lines, size):
    text = b"".join(line + b"\n" for line in lines)
    pieces = [text[start:start + size] for start in range(0, len(text), size)]
    with answer_from(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(pieces)) as answer:
        assert list(answer) == [line + b"\n" for line in lines]


def test_a_content_length_body_and_one_read_to_the_close():
    with answer_from(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nLocation: /pool/1\r\n\r\nhello") as answer:
        assert (answer.status, answer.headers["location"], answer.read()) == (200, "/pool/1", b"hello")
    with answer_from(b"HTTP/1.0 200 OK\r\n\r\nuntil the end") as answer:
        assert answer.read() == b"until the end"


def test_interim_answers_are_skipped():
    with answer_from(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}") as answer:
        assert (answer.status, answer.read()) == (202, b"{}")


@pytest.mark.parametrize("data, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ended 5 bytes early"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nshort", "ended 5 bytes early"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", "not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "ended"),
])
def test_a_body_cut_short_or_garbled_is_a_bad_answer(data, message):
    with answer_from(data) as answer:
        with pytest.raises(BadAnswer, match=message):
            answer.read()


def test_no_answer_at_all_is_a_reset_and_a_cut_head_a_bad_answer():
    with pytest.raises(ConnectionResetError):
        answer_from(b"")
    with pytest.raises(BadAnswer, match="head broke off"):
        answer_from(b"HTTP/1.1 200 OK\r\nContent-Le")


def test_head_lines_and_header_count_are_bounded():
    with pytest.raises(BadAnswer, match="a header line over 65536 bytes"):
        answer_from(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n")
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(wire.MAX_HEADERS + 1))
    with pytest.raises(BadAnswer, match="more than 100 header lines"):
        answer_from(b"HTTP/1.1 200 OK\r\n" + many + b"\r\n")
    with pytest.raises(BadAnswer, match="a chunk-size line over"):
        answer_from(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 70000).read()


def test_a_body_over_the_bound_is_refused_as_it_grows():
    with answer_from(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked([b"x" * 60] * 2),
                     max_body=100) as answer:
        with pytest.raises(BadAnswer, match="over the client's 100 bytes"):
            answer.read()
    with answer_from(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101, max_body=100) as answer:
        with pytest.raises(BadAnswer, match="over the client's 100 bytes"):
            answer.read()


# -- real servers on loopback ----------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):      # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"path": self.path, "body": body.decode(), "auth": self.headers["Authorization"],
                             "host": self.headers["Host"]}).encode()
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"1\r\n \r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(answer), answer))

    def do_GET(self):       # noqa: N802
        self.send_response(404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_a_request_to_a_real_server_and_its_chunked_answer(server):
    url = "http://127.0.0.1:%d/job?wait=1" % server.server_port
    with wire.open_url("POST", url, b'{"cmd": "true"}', [("Authorization", "Bearer t")], 5, environ={}) as answer:
        assert answer.status == 200
        assert json.loads(answer.read()) == {"path": "/job?wait=1", "body": '{"cmd": "true"}', "auth": "Bearer t",
                                             "host": "127.0.0.1:%d" % server.server_port}
    with wire.open_url("GET", "http://localhost:%d/x" % server.server_port, environ={}) as answer:
        assert (answer.status, answer.read()) == (404, b"{}")


def test_a_closed_port_is_refused_and_a_silent_server_times_out():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(TimeoutError):
            wire.open_url("GET", "http://127.0.0.1:%d/health" % port, timeout=0.3, environ={})
    with pytest.raises(ConnectionRefusedError):
        wire.open_url("GET", "http://127.0.0.1:%d/health" % port, timeout=5, environ={})


def test_http_proxy_variables_are_honoured_as_urllib_honours_them(server):
    """A request goes through $http_proxy in absolute form, unless $no_proxy names the host."""
    seen = []

    def proxy(listener):
        connection, _ = listener.accept()
        with connection:
            seen.append(connection.recv(65536))
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=proxy, args=(listener,), daemon=True)
        thread.start()
        environ = {"http_proxy": "http://user:pw@127.0.0.1:%d" % listener.getsockname()[1]}
        url = "http://m1.example:8080/health"
        with wire.open_url("GET", url, timeout=5, environ=environ) as answer:
            assert answer.read() == b"proxied"
        thread.join(5)
    assert seen[0].startswith(b"GET http://m1.example:8080/health HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpwdw==\r\n" in seen[0]
    environ = dict(environ, no_proxy="127.0.0.1")
    with wire.open_url("GET", "http://127.0.0.1:%d/x" % server.server_port, timeout=5, environ=environ) as answer:
        assert answer.status == 404         # straight to the server: no proxy listens any more


def test_https_goes_through_a_connect_tunnel_and_the_pin_is_checked_end_to_end(tmp_path):
    """$https_proxy: CONNECT to the master, TLS inside the tunnel, the certificate pinned
    (the proxy's credentials never reach the master)."""
    from pcci import tls
    from pcci.client.transport import tls_wrapper
    cert, key = str(tmp_path / "api.crt"), str(tmp_path / "api.key")
    tls.ensure_certificate(cert, key, "wire-test", extra_names=["127.0.0.1"])
    context = tls.server_context(cert, key)
    heads = {}

    def master(listener):
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as secure:
            heads["master"] = secure.recv(65536)
            secure.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def proxy(listener, master_port):
        connection, _ = listener.accept()
        with connection, socket.create_connection(("127.0.0.1", master_port)) as upstream:
            heads["proxy"] = connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for source, sink in ((connection, upstream), (upstream, connection)):
                threading.Thread(target=pipe, args=(source, sink), daemon=True).start()
            done.wait(10)

    def pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    return
                sink.sendall(data)
        except OSError:
            return

    done = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as master_listener, \
            socket.create_server(("127.0.0.1", 0)) as proxy_listener:
        master_port = master_listener.getsockname()[1]
        threads = [threading.Thread(target=master, args=(master_listener,), daemon=True),
                   threading.Thread(target=proxy, args=(proxy_listener, master_port), daemon=True)]
        for thread in threads:
            thread.start()
        environ = {"https_proxy": "http://u:p@127.0.0.1:%d" % proxy_listener.getsockname()[1]}
        url = "https://127.0.0.1:%d/health" % master_port
        pin = tls.normalize_fingerprint(tls.file_fingerprint(cert))
        with wire.open_url("GET", url, timeout=10, tls=tls_wrapper(fingerprint=pin), environ=environ) as answer:
            assert (answer.status, answer.read()) == (200, b"{}")
        done.set()
        for thread in threads:
            thread.join(10)
    assert heads["proxy"].startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % master_port)
    assert b"Proxy-Authorization: Basic dTpw\r\n" in heads["proxy"]
    assert heads["master"].startswith(b"GET /health HTTP/1.1\r\n") and b"Proxy-Authorization" not in heads["master"]


def test_a_body_read_in_sizes_gives_every_byte_once_in_order():
    # pcci fetch downloads a file this way: pieces of a size, never the whole body at once.
    body = bytes(range(256)) * 41
    answer = answer_from(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + chunked([body[i:i + 1000] for i in range(0, len(body), 1000)]))
    pieces = list(iter(lambda: answer.read(777), b""))
    assert b"".join(pieces) == body and max(map(len, pieces)) == 777
    assert answer.read(10) == b"" and answer.read() == b""
