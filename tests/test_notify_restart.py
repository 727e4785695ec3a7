"""Notifications survive the master: the outbox is in the store, so a master killed between
two attempts, or while the pool ran, sends them when it is back (at least once)."""

import http.server
import json
import signal
import threading
import time

import pytest

from conftest import wait_until


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 500 until ``accept`` is set, then 200; keeps each request's delivery id and body."""

    def __init__(self):
        self.got, self.accept = [], threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/hook" % self.server_port

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append((self.headers["X-PCCI-Delivery"], json.loads(body)))
        self.send_response(200 if self.server.accept.is_set() else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()


def shown(cluster, pool_id):
    return cluster.api("GET", "/pool/%s" % pool_id)[1].get("notifications") or []


def test_a_notification_is_delivered_after_the_master_was_killed_between_attempts(cluster, receiver):
    settings = {"notify_allow": ["127.0.0.0/8"], "notify_retry": "1s"}
    cluster.start_master(**settings)
    cluster.start_worker("w1")
    status, answer = cluster.api("POST", "/job", {"cmd": "exit 1", "workers": ["w1"],
                                                  "notify": [{"url": receiver.url, "secret": "s" * 20}]})
    assert status == 202, answer
    pool_id = answer["id"]
    wait_until(lambda: len(receiver.got) >= 1, timeout=20, what="a first attempt")
    wait_until(lambda: shown(cluster, pool_id)[0]["attempts"], what="the first attempt recorded")
    cluster.master.kill()                               # SIGKILL: nothing is flushed or handed over
    receiver.accept.set()
    cluster.start_master(**settings)
    wait_until(lambda: shown(cluster, pool_id)[0]["state"] == "sent", timeout=30, what="the notification sent")
    (notification,) = shown(cluster, pool_id)
    assert [a.get("status") for a in notification["attempts"]][0] == 500
    assert notification["attempts"][-1]["status"] == 200
    assert {delivery for delivery, _ in receiver.got} == {notification["id"]}
    assert all(body["pool"]["id"] == pool_id for _, body in receiver.got)
    log = cluster.master.log()                          # both masters' lines: one a attempt
    assert "attempt 1: HTTP 500; next attempt in" in log and "HTTP 200; sent" in log


def test_a_pool_that_ends_while_its_master_is_down_is_notified_when_it_is_back(cluster, receiver):
    receiver.accept.set()
    settings = {"notify_allow": ["127.0.0.0/8"], "notify_retry": "1s"}
    cluster.start_master(**settings)
    cluster.start_worker("w1")
    status, answer = cluster.api("POST", "/job", {"cmd": "sleep 2; exit 4", "workers": ["w1"],
                                                  "notify": [{"url": receiver.url, "on": ["failed"]}]})
    assert status == 202, answer
    cluster.wait_running(answer["id"], "w1")
    cluster.master.signal(signal.SIGKILL)
    cluster.master.process.wait(10)
    time.sleep(2.5)                                     # the job ends while no master runs
    cluster.start_master(**settings)
    wait_until(lambda: receiver.got, timeout=30, what="the notification")
    wait_until(lambda: shown(cluster, answer["id"])[0]["state"] == "sent", what="recorded as sent")
    (_, body), = receiver.got
    assert body["event"] == "failed" and body["pool"]["exitCode"] == 4
