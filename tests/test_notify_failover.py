"""Notifications with several masters on one MariaDB: only the active master sends, a
standby shows the attempts from the database, and the master that takes over after a
SIGKILL goes on with the same notification (tests/test_high_availability.py's masters)."""

from conftest import wait_until
from test_high_availability import LEASE, TAKEOVER_MARGIN, masters, start_workers, wait_role  # noqa: F401
from test_notify_restart import receiver  # noqa: F401 (the fixture)

NOTIFY = {"notify_allow": ["127.0.0.0/8"], "notify_retry": "1s"}


def shown(cluster, pool_id):
    return cluster.api("GET", "/pool/%s" % pool_id)[1].get("notifications") or [{"attempts": [], "state": None}]


def test_only_the_active_master_sends_and_a_new_one_takes_over_the_notification(masters, receiver):  # noqa: F811
    a, b = masters
    a.start_master(**dict(a.settings, **NOTIFY))
    wait_role(a, "active", timeout=LEASE + TAKEOVER_MARGIN)
    b.start_master(**dict(b.settings, **NOTIFY))
    start_workers(masters, ["w1"])
    a.wait_online("w1")
    status, submitted = a.api("POST", "/job", {"cmd": "false", "workers": ["w1"],
                                               "notify": [{"url": receiver.url, "secret": "s" * 16}]})
    assert status == 202, submitted
    pool_id = submitted["id"]
    wait_until(lambda: len(shown(b, pool_id)[0]["attempts"]) >= 3, timeout=20,
               what="three attempts, seen from the standby")
    # Each request the receiver got is an attempt the active master recorded (one may be under
    # way): a standby sending too would have doubled them.
    recorded = len(shown(a, pool_id)[0]["attempts"])
    assert recorded <= len(receiver.got) <= recorded + 1
    assert all(attempt["status"] == 500 for attempt in shown(b, pool_id)[0]["attempts"])

    a.master.kill()
    receiver.accept.set()
    wait_role(b, "active", timeout=LEASE + TAKEOVER_MARGIN)
    wait_until(lambda: shown(b, pool_id)[0]["state"] == "sent", timeout=30, what="sent by the new active master")
    (notification,) = shown(b, pool_id)
    assert notification["attempts"][-1]["status"] == 200
    assert {delivery for delivery, _ in receiver.got} == {notification["id"]}
    assert "attempt %d: HTTP 200; sent" % len(notification["attempts"]) in b.master.log()
