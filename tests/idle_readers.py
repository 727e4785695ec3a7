"""Clients that send a request and never read the answer, and the master's memory while
they hang: the tests of what a reader can cost the master share these."""

import socket
import time

import psutil


def open_idle_readers(cluster, path, count):
    """``count`` sockets (4 KiB receive buffers) that ask for ``path`` and never read."""
    auth = "Authorization: Bearer %s\r\n" % cluster.token if cluster.token else ""
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, auth)).encode()
    readers = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", cluster.api_port))
        sock.sendall(request)
        readers.append(sock)
    return readers


def peak_rss(pid, before, rounds=30):
    """The process's largest RSS from ``before`` until it holds still (2 s within 1 MiB), bounded."""
    process = psutil.Process(pid)
    peak, last, steady = before, 0, 0
    for _ in range(rounds):
        time.sleep(0.5)
        now = process.memory_info().rss
        peak, steady, last = max(peak, now), steady + 1 if abs(now - last) < 1 << 20 else 0, now
        if steady >= 4:
            break
    return peak
