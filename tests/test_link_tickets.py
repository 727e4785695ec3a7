"""The worker link's TLS sends no session tickets: workers never resume a session (the
key proofs are bound to the certificate of a full handshake), so tickets would only cost
the master work and memory at every reconnect of a large cluster."""

import gevent
import gevent.socket

from harness import link_certificate
from pcci import tls
from pcci.master.service import worker_link_tls


def test_the_worker_link_sends_no_session_tickets(tmp_path):
    cert, key = link_certificate()
    context, fingerprint = worker_link_tls(_Settings(cert, key, str(tmp_path)))
    assert fingerprint == tls.file_fingerprint(cert)
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as server:
            server.sendall(b"hello")
            server.recv(10)
    served = gevent.spawn(serve)
    client = tls.link_client_context().wrap_socket(gevent.socket.create_connection(listener.getsockname()))
    try:
        assert client.recv(5) == b"hello"       # any ticket would have come before these bytes
        assert client.version() == "TLSv1.3"
        assert client.session is None or not client.session.has_ticket
    finally:
        client.sendall(b"bye")
        client.close()
        served.join(5)
        listener.close()


class _Settings:
    worker_tls = True

    def __init__(self, cert, key, state_dir):
        self.worker_tls_cert, self.worker_tls_key, self.state_dir = cert, key, state_dir
