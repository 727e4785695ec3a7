"""An attacker on the path between a worker and its master, for tests/test_onpath.py.

    python3 tests/onpath.py MODE LISTEN_HOST LISTEN_PORT MASTER_HOST MASTER_PORT RECORD_FILE [CERT KEY MARK]

It accepts the worker's connection (the worker was pointed at it, as ARP or DNS spoofing
would do) and opens its own to the master. Every byte either way is appended to
RECORD_FILE. By MODE it then:

* ``record`` -- only relays and records (a passive sniffer);
* ``inject`` -- relays, and 2 s into the first session writes a forged ``run`` frame (a
  job that touches MARK) into the stream towards the worker (an active injector);
* ``mitm``   -- ends the worker's TLS with its own certificate CERT/KEY and opens TLS to the
  master, relays the handshake messages between the two, then sends the worker a forged
  ``welcome`` and ``run`` (a man in the middle who lacks the cluster key).

Threads and plain sockets: it must not share anything with the code under test.
"""

import json
import socket
import ssl
import struct
import sys
import threading
import time

from linkproxy import pump

INJECT_AFTER_SECONDS = 2.0


def frame(message):
    payload = json.dumps(message).encode()
    return struct.pack(">I", len(payload)) + payload


class Recorder:
    def __init__(self, path):
        self.handle = open(path, "ab", buffering=0)
        self.lock = threading.Lock()

    def write(self, data):
        with self.lock:
            self.handle.write(data)


def recording(recorder, forged=None, started=None):
    """What a pump sends on: every byte, recorded; ``forged`` added once, after INJECT_AFTER_SECONDS."""
    def passing(data):
        nonlocal forged
        recorder.write(data)
        if forged is not None and time.monotonic() - started > INJECT_AFTER_SECONDS:
            data, forged = data + forged, None
        return data
    return passing


def read_frame(sock, recorder):
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            raise ConnectionError("closed")
        header += chunk
    length = struct.unpack(">I", header)[0]
    payload = b""
    while len(payload) < length:
        chunk = sock.recv(length - len(payload))
        if not chunk:
            raise ConnectionError("closed")
        payload += chunk
    recorder.write(header + payload)
    return header + payload, json.loads(payload)


def relay(mode, worker_sock, master_address, recorder, forged_run, tls_args, first):
    master_sock = socket.create_connection(master_address, timeout=30)
    master_sock.settimeout(None)
    worker_sock.settimeout(None)
    if mode == "mitm":
        cert, key = tls_args
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        worker_sock = server.wrap_socket(worker_sock, server_side=True)
        master_sock = client.wrap_socket(master_sock)
        try:
            raw, _hello = read_frame(worker_sock, recorder)       # hello
            master_sock.sendall(raw)
            raw, challenge = read_frame(master_sock, recorder)    # challenge
            worker_sock.sendall(raw)
            raw, _auth = read_frame(worker_sock, recorder)        # the worker's proof, bound to our certificate
            master_sock.sendall(raw)
            raw, verdict = read_frame(master_sock, recorder)      # the master's answer
            recorder.write(b"\nMASTER-VERDICT " + json.dumps(verdict).encode() + b"\n")
            # Whatever the master said, try to make the worker obey us.
            worker_sock.sendall(frame({"type": "welcome", "version": 2, "proof": "00" * 32, "heartbeatTimeout": 15})
                                + forged_run)
            time.sleep(3)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            worker_sock.close()
            master_sock.close()
        return
    started = time.monotonic()
    towards_worker = threading.Thread(target=pump, args=(master_sock, worker_sock, recording(
        recorder, forged_run if mode == "inject" and first else None, started)))
    towards_worker.start()
    pump(worker_sock, master_sock, recording(recorder))
    towards_worker.join()


def main(argv):
    mode, listen_host, listen_port, master_host, master_port, record_path = argv[:6]
    tls_args = argv[6:8]
    mark = argv[8] if len(argv) > 8 else "/nonexistent/pcci-forged"
    recorder = Recorder(record_path)
    forged_run = frame({"type": "run", "job": "forged-by-attacker/pi1", "cmd": "touch %s" % mark,
                        "timeout": None, "env": None, "cwd": None})
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((listen_host, int(listen_port)))
    listener.listen(16)
    print("listening", flush=True)
    sessions = 0
    while True:
        worker_sock, _ = listener.accept()
        sessions += 1
        threading.Thread(target=relay, daemon=True,
                         args=(mode, worker_sock, (master_host, int(master_port)), recorder, forged_run,
                               tls_args, sessions == 1)).start()


if __name__ == "__main__":
    main(sys.argv[1:])
