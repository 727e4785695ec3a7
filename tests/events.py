"""A Server-Sent Events follower for tests: reads a stream in a thread, keeping every event
(with the moment it was read), so a test can wait for one while the job still runs."""

import json
import threading
import time
import urllib.request

from pcci.client.events import parse_events


class Follower:
    def __init__(self, cluster, path, last_event_id=None, timeout=30):
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (cluster.api_port, path))
        if cluster.token:
            request.add_header("Authorization", "Bearer " + cluster.token)
        if last_event_id:
            request.add_header("Last-Event-ID", last_event_id)
        self.response = urllib.request.urlopen(request, timeout=timeout)
        self.events = []        # (id, kind, data as parsed JSON, time read)
        self.ended = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for event_id, kind, data in parse_events(self.response):
                self.events.append((event_id, kind, json.loads(data), time.time()))
        except Exception as exc:    # the test closed it, or it broke: the test checks which
            self.error = exc
        finally:
            self.ended.set()

    def kinds(self):
        return [kind for _, kind, _, _ in self.events]

    def text(self, worker, stream="stdout"):
        """The stream's output as the events carried it, checking each piece starts where the
        last ended (a text offset, in characters): no gap, no overlap."""
        joined, end = "", 0
        for _, kind, data, _ in self.events:
            if kind == "output" and data["worker"] == worker and data["stream"] == stream:
                assert data["offset"] == end, "piece at %d after %d bytes" % (data["offset"], end)
                joined += data["text"]
                end += len(data["text"])
        return joined

    def last_id(self):
        return [event_id for event_id, _, _, _ in self.events if event_id][-1]

    def close(self):
        try:
            self.response.fp.raw._sock.shutdown(2)
        except (AttributeError, OSError):
            pass
        self.response.close()
        self.thread.join(5)
