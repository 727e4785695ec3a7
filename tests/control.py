"""A line-at-a-time control channel on a Unix socket, for the test harnesses that run as
processes of their own (tests/powercut.py, tests/linkproxy.py): one line in, one out."""

import socket


def serve(path, answer):
    """Answer each connection's one command line with answer(words), forever."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    while True:
        connection, _ = server.accept()
        with connection:
            words = connection.makefile().readline().split()
            connection.sendall(answer(words).encode() + b"\n")


def command(path, text, timeout=60):
    """Send one command line to a harness; its one-line answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(text.encode() + b"\n")
        return sock.makefile().readline().strip()
