"""Schedules through the REST API of a real master in this process (tests/harness.py):
what they fire, what they refuse, who may change them, and what a restart resumes."""

import json
import logging
import time

import gevent
import pytest

from pcci.master import schedule_spec

TOKENS = [{"name": "viewer", "scope": "read", "token": "r" * 24},
          {"name": "ops", "scope": "operate", "token": "o" * 24},
          {"name": "boss", "scope": "admin", "token": "a" * 24}]
READ, OPERATE, ADMIN = "r" * 24, "o" * 24, "a" * 24


def start(in_process, worker=True, **overrides):
    master = in_process(schedule_min_interval="1s", **overrides)
    if worker:
        master.start_worker("w1")
    return master


def scheduled_pools(master, name):
    _, page = master.api("GET", "/pools?limit=500")
    return [pool for pool in page["pools"] if pool["scheduledBy"] == name]


def test_a_schedule_fires_ordinary_pools_once_per_due_time(in_process):
    master = start(in_process)
    status, made = master.api("POST", "/schedules", {"name": "tick", "when": "every 1s", "cmd": "echo tick",
                                                     "workers": "w1"})
    assert status == 201 and made["nextDue"] and made["enabled"] is True and made["missed"] == "skip"
    master.wait_until(lambda: len(scheduled_pools(master, "tick")) >= 3, timeout=10)
    pools = scheduled_pools(master, "tick")
    dues = [pool["scheduledFor"] for pool in pools]
    assert len(dues) == len(set(dues))                  # one pool per due time
    assert all(pool["submittedFrom"] == "schedule" and pool["submittedBy"] == "local" for pool in pools)
    _, one = master.api("GET", "/pool/%s?wait=5" % pools[-1]["id"])
    assert one["jobs"]["w1"]["stdout"] == "tick\n" and one["scheduledBy"] == "tick"
    _, shown = master.api("GET", "/schedules/tick")
    assert shown["pools"][0]["scheduledFor"] > shown["pools"][-1]["scheduledFor"]      # newest first
    assert {pool["outcome"] for pool in shown["pools"][1:]} == {"succeeded"}
    master.wait_until(lambda: master.api("GET", "/schedules/tick")[1]["lastSuccess"] is not None)


@pytest.mark.slow      # seconds of watching that nothing fires: not for the fast tier
def test_disabling_stops_the_pools_and_enabling_does_not_run_what_was_missed(in_process):
    master = start(in_process)
    master.api("POST", "/schedules", {"name": "tick", "when": "every 1s", "cmd": "true", "workers": "w1",
                                      "missed": "run_once"})
    master.wait_until(lambda: scheduled_pools(master, "tick"), timeout=10)
    status, changed = master.api("PUT", "/schedules/tick", {"enabled": False})
    assert status == 200 and changed["enabled"] is False and changed["nextDue"] is None
    gevent.sleep(0.3)
    count = len(scheduled_pools(master, "tick"))
    gevent.sleep(2.5)
    assert len(scheduled_pools(master, "tick")) == count
    enabled_at = time.time()
    master.api("PUT", "/schedules/tick", {"enabled": True})
    master.wait_until(lambda: len(scheduled_pools(master, "tick")) > count, timeout=10)
    newest = scheduled_pools(master, "tick")[0]
    # The first pool after enabling is for a due time after it, not one missed while it was off.
    assert newest["scheduledFor"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(enabled_at))


def test_a_due_time_whose_target_matches_nothing_is_refused_and_said_so(in_process):
    master = start(in_process)
    master.api("POST", "/schedules", {"name": "nobody", "when": "every 1s", "cmd": "true", "workers": "gone*"})
    master.wait_until(lambda: (master.api("GET", "/schedules/nobody")[1]["lastRun"] or {}).get("outcome")
                      == "refused", timeout=10)
    _, shown = master.api("GET", "/schedules/nobody")
    assert "no worker" in shown["lastRun"]["error"] and shown["lastRun"]["pool"] is None
    assert scheduled_pools(master, "nobody") == []


def test_the_template_is_checked_as_post_job_checks_it(in_process):
    master = start(in_process, worker=False)
    base = {"name": "x", "when": "every 1m", "cmd": "true"}
    cases = [(dict(base, name="a/b"), "wrong_type"), (dict(base, name="a\n"), "wrong_type"),
             (dict(base, name="-a"), "wrong_type"), (dict(base, when="every 0s"), "wrong_type"),
             (dict(base, when="*/5 * * *"), "wrong_type"), (dict(base, timezone="Nowhere/City"), "wrong_type"),
             (dict(base, missed="twice"), "wrong_type"), (dict(base, enabled="yes"), "wrong_type"),
             (dict(base, managedBy="-ansible"), "wrong_type"), (dict(base, managedBy=7), "wrong_type"),
             (dict(base, cmd=""), "empty_cmd"), (dict(base, colour="red"), "unknown_field"),
             (dict(base, timeout=-1), "out_of_range"),
             (dict(base, copy={"dest": "/tmp/f", "content": "aGk="}), "wrong_type"),
             ({"name": "x", "when": "every 1m", "copy": {"dest": "relative", "content": "aGk="}}, "wrong_type"),
             # an uploaded file is purged with the retention: a schedule carries its file itself
             ({"name": "x", "when": "every 1m", "copy": {"dest": "/tmp/f", "sha256": "0" * 64}}, "wrong_type")]
    for body, code in cases:
        status, answer = master.api("POST", "/schedules", body)
        assert (status, answer["error"]["code"]) == (400, code), body
    status, answer = master.api("POST", "/schedules", dict(base, cmd="x" * (schedule_spec.MAX_SCHEDULE_BYTES + 1)))
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
    assert master.api("GET", "/schedules")[1]["schedules"] == []
    status, added = master.api("POST", "/schedules", dict(base, when="*/5 * * * *", timezone="Europe/Berlin",
                                                          managedBy="ansible"))
    assert status == 201 and added["managedBy"] == "ansible"                      # kept and shown, as given
    status, answer = master.api("POST", "/schedules", base)
    assert (status, answer["error"]["code"]) == (409, "schedule_exists")
    assert master.api("GET", "/schedules/nope")[1]["error"]["code"] == "unknown_schedule"
    assert master.api("PUT", "/schedules/x", {"name": "y"})[0] == 400
    status, changed = master.api("PUT", "/schedules/x", {"copy": {"dest": "/tmp/f", "content": "aGk="}})
    assert status == 200 and "cmd" not in changed and changed["copy"] == {"dest": "/tmp/f"}


def test_max_schedules_is_checked_before_the_insert(in_process):
    master = start(in_process, max_schedules=2, worker=False)
    for name in ("a", "b"):
        assert master.api("POST", "/schedules", {"name": name, "when": "every 1h", "cmd": "true"})[0] == 201
    status, answer = master.api("POST", "/schedules", {"name": "c", "when": "every 1h", "cmd": "true"})
    assert (status, answer["error"]["code"]) == (409, "too_many_schedules")
    assert master.api("PUT", "/schedules/a", {"cmd": "false"})[0] == 200       # a change is not a new one
    assert master.api("DELETE", "/schedules/a")[0] == 200
    assert master.api("POST", "/schedules", {"name": "c", "when": "every 1h", "cmd": "true"})[0] == 201


def test_scopes_root_needs_admin_and_every_change_is_audited(in_process, caplog):
    master = start(in_process, api_tokens=TOKENS, worker=False)
    body = {"name": "job", "when": "every 1h", "cmd": "true", "env": {"SECRET": "s3"}}
    with caplog.at_level(logging.INFO, logger="pcci.audit"):
        assert master.api("POST", "/schedules", body, token=READ)[1]["error"]["code"] == "insufficient_scope"
        assert master.api("POST", "/schedules", body, token=OPERATE)[0] == 201
        rooted = dict(body, name="rooted", user="root")
        assert master.api("POST", "/schedules", rooted, token=OPERATE)[1]["error"]["code"] == "insufficient_scope"
        assert master.api("PUT", "/schedules/job", {"user": "root"}, token=OPERATE)[0] == 403
        assert master.api("POST", "/schedules", rooted, token=ADMIN)[0] == 201
        assert master.api("DELETE", "/schedules/rooted", token=OPERATE)[0] == 403
        assert master.api("PUT", "/schedules/job", {"enabled": False}, token=OPERATE)[0] == 200
        assert master.api("DELETE", "/schedules/job", token=READ)[0] == 403
        assert master.api("DELETE", "/schedules/rooted", token=ADMIN)[0] == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "pcci.audit"]
    assert any(line.startswith("POST /schedules by ops") and "schedule job added: every 1h" in line
               for line in lines)
    assert any(line.startswith("PUT /schedules/job by ops") and "-> 200" in line and "enabled" in line
               for line in lines)
    assert any(line.startswith("DELETE /schedules/rooted by boss") and "-> 200" in line for line in lines)
    assert any("POST /schedules by viewer" in line and "403" in line for line in lines)
    _, seen = master.api("GET", "/schedules/job", token=READ)
    assert seen["env"] == {"SECRET": None} and seen["changedBy"] == "ops"
    assert master.api("GET", "/schedules/job", token=OPERATE)[1]["env"] == {"SECRET": "s3"}


@pytest.mark.slow      # two masters' starts and several due times
def test_a_restarted_master_resumes_without_a_second_pool_for_a_due_time(in_process, tmp_path):
    from harness import InProcessMaster
    first = start(in_process)
    first.api("POST", "/schedules", {"name": "tick", "when": "every 1s", "cmd": "true", "workers": "w1"})
    first.wait_until(lambda: len(scheduled_pools(first, "tick")) >= 2, timeout=10)
    first.stop()
    again = InProcessMaster(tmp_path, schedule_min_interval="1s")
    try:
        again.start_worker("w1")
        again.wait_until(lambda: len(scheduled_pools(again, "tick")) >= 5, timeout=15)
        dues = [pool["scheduledFor"] for pool in scheduled_pools(again, "tick")]
        assert len(dues) == len(set(dues))
        _, listed = again.api("GET", "/schedules")
        assert [entry["name"] for entry in listed["schedules"]] == ["tick"]
    finally:
        again.stop()


def test_a_schedules_notify_is_post_jobs_notify(in_process):
    """The template is POST /job's body: its notify field needs no code of the schedules'."""
    from test_notify import LOOPBACK_ALLOWED, SECRET, Receiver, verified
    master = start(in_process, **LOOPBACK_ALLOWED)
    hook = Receiver()
    try:
        status, refused = master.api("POST", "/schedules", {"name": "off", "when": "every 1s", "cmd": "true",
                                                            "notify": [{"url": "http://10.9.9.9/hook"}]})
        assert (status, refused["error"]["code"]) == (400, "notify_not_allowed")
        status, made = master.api("POST", "/schedules", {
            "name": "told", "when": "every 1s", "cmd": "exit 3", "workers": "w1",
            "notify": [{"url": hook.url, "on": ["failed"], "secret": SECRET}]})
        assert status == 201, made
        master.wait_until(lambda: hook.got, timeout=10, what="a notification")
        headers, body, _ = hook.got[0]
        summary = json.loads(body)["pool"]
        assert verified(headers, body) and summary["scheduledBy"] == "told" and summary["exitCode"] == 3
    finally:
        hook.stop()
