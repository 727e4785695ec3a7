"""What one idle TLS connection costs a gevent server, piece by piece, in one process.

N socket pairs; the client ends do their TLS handshakes in a forked child (so only the
server's side is counted here). Printed per connection, from RSS after a malloc_trim and
from glibc's count of bytes in use: the server's TLS state after the handshake (the
link's context: TLS 1.3, no tickets), then what waiting for the next message costs when
that is a greenlet parked in ``recv`` (gevent.spawn, or spawn_raw), or a libev io watcher
and a timer (master/session_reader.py). Then the CPU side: starting a new greenlet for
each burst of reading against waking a parked one. Run it under each gevent to compare.

    python3 bench/reader_cost.py [N]        (default 2000)
"""

import ctypes
import gc
import os
import socket
import sys
import tempfile
import time

import gevent
import gevent.socket

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci import tls  # noqa: E402

LIBC = ctypes.CDLL("libc.so.6")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


LIBC.mallinfo2.restype = MallInfo2


def rss_kb():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))


def measured():
    """(RSS KB, KB malloc'd and in use), after a collection and a trim."""
    gc.collect()
    LIBC.malloc_trim(0)
    return rss_kb(), LIBC.mallinfo2().uordblks / 1024


def handshaken(count, directory):
    """``count`` server-side TLS sockets after their handshakes, and the child holding the clients."""
    cert, key = os.path.join(directory, "c.pem"), os.path.join(directory, "k.pem")
    tls.ensure_certificate(cert, key, "bench")
    server = tls.server_context(cert, key)
    server.num_tickets = 0          # as the worker link (master/service.py)
    pairs = [socket.socketpair() for _ in range(count)]
    child = os.fork()
    if child == 0:
        client = tls.link_client_context()
        kept = []
        for ours, theirs in pairs:
            ours.close()
            kept.append(client.wrap_socket(gevent.socket.socket(fileno=theirs.detach())))
        time.sleep(600)
        os._exit(0)
    plain = []
    for ours, theirs in pairs:
        theirs.close()
        plain.append(gevent.socket.socket(fileno=ours.detach()))
    before = measured()
    servers = [server.wrap_socket(sock, server_side=True) for sock in plain]
    return servers, child, before


def parked(sock):
    try:
        sock.recv(65536)
    except OSError:
        pass


def main(count):
    with tempfile.TemporaryDirectory() as directory:
        servers, child, (rss0, used0) = handshaken(count, directory)
        try:
            rss1, used1 = measured()
            print("gevent %s, %s, %d connections, KB per connection (RSS / malloc'd in use):"
                  % (gevent.__version__, servers[0].version(), count))
            print("  TLS after the handshake                       %6.2f / %.2f" % ((rss1 - rss0) / count, (used1 - used0) / count))
            loop = gevent.get_hub().loop
            watchers = []
            for sock in servers:
                watcher, timer = loop.io(sock.fileno(), 1), loop.timer(60)
                watcher.start(print)
                timer.start(print)
                watchers.append((watcher, timer))
            gevent.sleep(0.2)
            rss2, used2 = measured()
            print("  an io watcher and a timer                     %6.2f / %.2f" % ((rss2 - rss1) / count, (used2 - used1) / count))
            for watcher, timer in watchers:
                watcher.close()
                timer.close()
            rss2, used2 = measured()
            for name, spawn in (("gevent.spawn", gevent.spawn), ("gevent.spawn_raw", gevent.spawn_raw)):
                waiting = [spawn(parked, sock) for sock in servers[:count // 2]]
                gevent.sleep(0.2)
                rss3, used3 = measured()
                half = count // 2
                print("  a greenlet parked in recv (%-16s) %6.2f / %.2f"
                      % (name, (rss3 - rss2) / half, (used3 - used2) / half))
                servers = servers[count // 2:] if name == "gevent.spawn" else servers
                rss2, used2 = rss3, used3
                del waiting
        finally:
            os.kill(child, 9)
            os.waitpid(child, 0)


def switch_costs(rounds=100000):
    """µs to start a greenlet for a burst, and to wake a parked one (as the reused readers are)."""
    def burst():
        return len("x")
    started = time.perf_counter()
    for n in range(rounds):
        gevent.spawn_raw(burst)
        if n % 1000 == 999:
            gevent.sleep(0)
    gevent.sleep(0)
    spawned = (time.perf_counter() - started) / rounds * 1e6
    hub, woken = gevent.get_hub(), [0]

    def parked_reader():
        while woken[0] < rounds:
            hub.switch()
            burst()
            woken[0] += 1
    reader = gevent.spawn_raw(parked_reader)
    gevent.sleep(0)
    started = time.perf_counter()
    for n in range(rounds):
        hub.loop.run_callback(reader.switch)
        if n % 1000 == 999:
            gevent.sleep(0)
    gevent.sleep(0)
    print("  a new greenlet per burst %.1f µs; waking a parked one %.1f µs"
          % (spawned, (time.perf_counter() - started) / rounds * 1e6))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    switch_costs()
