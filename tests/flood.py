"""An attacker that holds idle connections open, for tests and benchmarks.

``Flood`` keeps ``per_address`` idle TCP connections from each of several loopback source
addresses open to each target port, and re-opens each one as soon as the master closes it
(or as soon as the port listens again, after a restart), as a determined attacker would.
It sends nothing. One thread, one epoll selector; bounded in time (``duration``) and in
count (addresses x per_address x ports sockets at most).
"""

import errno
import selectors
import socket
import threading
import time


def flood_addresses(count, first_subnet=10):
    """``count`` loopback addresses, each in a /24 of its own (127.0.10.1, 127.0.11.1, ...):
    the case a per-prefix cap alone does not stop."""
    return ["127.0.%d.1" % (first_subnet + n) for n in range(count)]


class Flood:
    def __init__(self, ports, addresses, per_address, duration=60.0, host="127.0.0.1", max_rate=20000):
        self.slots = [(port, address) for port in ports for address in addresses for _ in range(per_address)]
        self.host, self.duration = host, duration
        self.max_rate = max_rate   # new connections a second at most
        # A connection closed at once (refused at the door) is retried after this, not in a
        # tight loop: that would only burn the test machine's 2 cores, on both sides.
        self.refused_pause = 0.2
        self.stopping = threading.Event()
        self.opened = 0            # connections made, in all
        self.closed_by_master = 0  # of those, closed by the other end
        self.open_now = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self._thread.join(30)

    def _connect(self, port, address):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.bind((address, 0))
            err = sock.connect_ex((self.host, port))
        except OSError:
            sock.close()
            return None
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            return None
        return sock

    def _run(self):
        selector = selectors.DefaultSelector()
        pending = list(range(len(self.slots)))       # slots with no connection yet
        opened_at = {}
        paused = []                                  # (retry time, slot)
        last = time.monotonic()
        deadline = last + self.duration
        allowance = 0.0
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                retry = []
                now = time.monotonic()
                allowance = min(self.max_rate * 0.1, allowance + (now - last) * self.max_rate)
                last = now
                budget = int(allowance)
                allowance -= min(budget, len(pending))
                for slot in pending[budget:]:
                    retry.append(slot)
                for slot in pending[:budget]:
                    sock = self._connect(*self.slots[slot])
                    if sock is None:
                        retry.append(slot)
                        continue
                    self.opened += 1
                    self.open_now += 1
                    opened_at[slot] = time.monotonic()
                    selector.register(sock, selectors.EVENT_READ, slot)
                pending = retry
                for key, _ in selector.select(0.02):
                    sock, slot = key.fileobj, key.data
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        continue            # e.g. a TLS alert before the close: ignore it
                    selector.unregister(sock)
                    sock.close()
                    self.open_now -= 1
                    self.closed_by_master += 1
                    if time.monotonic() - opened_at[slot] < 0.1:
                        paused.append((time.monotonic() + self.refused_pause, slot))
                    else:
                        pending.append(slot)
                if paused:
                    now = time.monotonic()
                    pending.extend(slot for when, slot in paused if when <= now)
                    paused = [(when, slot) for when, slot in paused if when > now]
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()
            self.open_now = 0
