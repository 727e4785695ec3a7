"""A TCP relay on loopback between workers and the master, so a test can cut the link,
slow it down, or make it stall.

Cutting closes every relayed connection and refuses new ones until restored, which is
what a worker sees when its network goes away and comes back. This kernel has no
netem, so delay and loss are made here, in user space: `delay` holds every chunk that
long (plus up to `jitter`) before passing it on, and `stall_chance` makes a chunk
wait 0.2-1 s, as a lost segment does until TCP retransmits it.
"""

import random
import socket
import sys
import threading
import time

import control



def shut_down(*sockets):
    """Both directions of each socket, ignoring ones already gone: the other pump then ends too."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def pump(source, sink, passing=lambda data: data):
    """Copy bytes until either side closes; ``passing(data)`` gives what to send on for each
    read (it may hold the bytes back a while, record them, add some)."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(passing(data))
    except OSError:
        pass
    finally:
        shut_down(source, sink)

class LinkProxy:
    def __init__(self, target_port, listen=("127.0.0.1", 0), target_host="127.0.0.1"):
        self.target_port, self.target_host = target_port, target_host
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(listen)
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.holding = threading.Event()     # set: bytes wait in the relay, as on a dead route
        self.delay, self.jitter, self.stall_chance = 0.0, 0.0, 0.0
        self.random = random.Random(target_port)
        self.sockets = []
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection((self.target_host, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(source, sink, self._passing), daemon=True).start()

    def _hold(self):
        while self.holding.is_set():
            time.sleep(0.02)    # until restore(); after a cut() the held bytes then meet a closed socket
        pause = self.delay + (self.random.uniform(0, self.jitter) if self.jitter else 0.0)
        if self.stall_chance and self.random.random() < self.stall_chance:
            pause += self.random.uniform(0.2, 1.0)
        if pause:
            time.sleep(pause)

    def _passing(self, data):
        self._hold()
        return data

    def cut(self):
        self.up.clear()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.sockets = []

    def restore(self):
        self.up.set()
        self.holding.clear()

    def hold(self):
        """Pass nothing on, either way, until restore(): what is sent meanwhile is lost if the
        link is cut() before then -- a frame the sender wrote that never arrives."""
        self.holding.set()

    def shape(self, delay=0.0, jitter=0.0, stall_chance=0.0):
        """Slow (delay, jitter) or lossy (stall_chance) from now on; shape() makes it clean again."""
        self.delay, self.jitter, self.stall_chance = delay, jitter, stall_chance

    def close(self):
        self.closing = True
        self.cut()
        self.listener.close()


def serve(listen_host, listen_port, target_host, target_port, control_path):
    """Run as a process (inside a network namespace, say), steered through a Unix socket
    (tests/control.py): "cut", "restore", or "shape DELAY JITTER STALL_CHANCE"."""
    proxy = LinkProxy(int(target_port), (listen_host, int(listen_port)), target_host)

    def answer(words):
        if words[:1] == ["cut"]:
            proxy.cut()
        elif words[:1] == ["restore"]:
            proxy.restore()
        elif words[:1] == ["shape"]:
            proxy.shape(*(float(word) for word in words[1:4]))
        else:
            return "error: unknown command"
        return "ok"
    control.serve(control_path, answer)


if __name__ == "__main__":
    serve(*sys.argv[1:6])
