"""`pcci schedule ...` as a user types it, against a real master and worker."""

import json
import re

import pytest

from conftest import wait_until
from test_cli import pcci

pytestmark = pytest.mark.process


def test_schedule_add_list_show_disable_enable_rm(cluster):
    cluster.start_master(api_tokens=["cli-token-" + "z" * 16], schedule_min_interval="1s")
    cluster.start_worker("pi1")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    added = pcci("schedule", "add", "tick", "--when", "every 1s", "-w", "pi1", "-e", "X=1", "--missed", "run_once",
                 "--", "echo", "tick", env=env)
    assert added.returncode == 0, added.stderr
    assert re.search(r"^when:\s+every 1s \(UTC\)$", added.stdout, re.M)
    assert re.search(r"^missed:\s+run_once$", added.stdout, re.M)
    again = pcci("schedule", "add", "tick", "--when", "every 1s", "-w", "pi1", "--", "true", env=env)
    assert again.returncode == 1 and "schedule_exists" in again.stderr + again.stdout or "exists" in again.stderr
    wait_until(lambda: "succeeded" in pcci("schedule", "list", env=env).stdout, timeout=15, what="a success")
    listed = pcci("schedule", "list", env=env).stdout
    assert re.search(r"^tick\s+every 1s\s+on\s+\S+\s+\w+\s+\S+\s+echo tick$", listed, re.M), listed
    shown = json.loads(pcci("schedule", "show", "tick", "--json", env=env).stdout)
    assert shown["env"] == {"X": "1"} and shown["pools"] and shown["pools"][0]["scheduledBy"] == "tick"
    disabled = pcci("schedule", "disable", "tick", env=env)
    assert disabled.returncode == 0 and re.search(r"^enabled:\s+no$", disabled.stdout, re.M)
    assert re.search(r"^next due:\s+-$", disabled.stdout, re.M)
    assert re.search(r"^enabled:\s+yes$", pcci("schedule", "enable", "tick", env=env).stdout, re.M)
    usage = pcci("schedule", "show", env=env)
    assert usage.returncode == 2 and "name" in usage.stderr
    no_command = pcci("schedule", "add", "x", "--when", "every 1m", "-w", "pi1", env=env)
    assert no_command.returncode == 2 and "after --" in no_command.stderr
    bad = pcci("schedule", "add", "x", "--when", "every 1s", "-w", "pi1", "-l", "root", "--", "true",
               env=dict(env, PCCI_TOKEN="wrong-" + "z" * 20))
    assert bad.returncode == 77
    removed = pcci("schedule", "rm", "tick", env=env)
    assert removed.returncode == 0 and removed.stdout.strip() == "removed schedule tick"
    gone = pcci("schedule", "show", "tick", env=env)
    assert gone.returncode == 1 and "unknown_schedule" in gone.stderr + gone.stdout or "no schedule" in gone.stderr
