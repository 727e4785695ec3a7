"""How long the master's API waits while one worker (with the cluster key) floods its link
with large heartbeats: a real master, a hand-made worker (tests/raw_worker.py) sending
heartbeats of MB megabytes as fast as the master takes them, and GET /health timed every
0.5 s during the flood (session_reader's turns: MESSAGES_PER_TURN, BYTES_PER_TURN).

    python3 bench/flood_turns.py [MB]       (default 4)
"""

import json
import os
import sys
import tempfile
import threading
import time

sys.path[:0] = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"),
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")]

from conftest import Cluster            # noqa: E402
from raw_worker import RawWorker        # noqa: E402
from pcci import framing                # noqa: E402

FLOOD_SECONDS = 25


def main():
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 4
    payload = json.dumps({"type": "heartbeat", "stats": {"junk": "x" * int(megabytes * 1024 * 1024)},
                          "running": []}).encode()
    frame = framing.HEADER.pack(len(payload)) + payload
    cluster = Cluster(tempfile.mkdtemp(prefix="flood-turns-"))
    try:
        cluster.start_master(heartbeat_timeout="60s")
        flooder = RawWorker(cluster.worker_port, "pi1")
        cluster.wait_online("pi1")
        stop = threading.Event()

        def flood():
            flooder.sock.settimeout(5)
            deadline = time.monotonic() + FLOOD_SECONDS
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    flooder.sock.sendall(frame)
                except OSError:
                    return
        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        time.sleep(2)
        waits = []
        for _ in range(8):
            began = time.monotonic()
            cluster.api("GET", "/health")
            waits.append(time.monotonic() - began)
            time.sleep(0.5)
        print("GET /health during a %g MB-frame flood: %s s (max %.2f)"
              % (megabytes, " ".join("%.2f" % w for w in waits), max(waits)))
        stop.set()
        thread.join(10)
        flooder.close()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
