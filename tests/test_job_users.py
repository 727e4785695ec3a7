"""Jobs as a chosen user, with a real master and workers (run as root, as the Debian
package's root-jobs drop-in runs them): a job as another user on one node, refused with
a reason on a node that does not allow that user, and a 400 when no node does."""

import os
import pwd

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def test_a_job_runs_as_the_user_asked_where_allowed_and_fails_clearly_elsewhere(cluster):
    cluster.start_master()
    cluster.start_worker("pi1", allowed_users=["nobody"])
    cluster.start_worker("pi2")
    offered = {w["name"]: w["users"] for w in cluster.api("GET", "/workers")[1]["workers"]}
    assert offered == {"pi1": ["root", "nobody"], "pi2": ["root"]}
    pool = cluster.run('id -un; echo "$HOME"', ["pi1", "pi2"], user="nobody")
    assert pool["user"] == "nobody"
    assert pool["jobs"]["pi1"]["stdout"] == "nobody\n%s\n" % pwd.getpwnam("nobody").pw_dir
    assert pool["jobs"]["pi2"]["state"] == "failed"
    assert "does not run jobs as 'nobody'" in pool["jobs"]["pi2"]["stderr"]
    status, answer = cluster.api("POST", "/job", {"cmd": "true", "workers": ["pi2"], "user": "nobody"})
    assert status == 400 and answer["error"]["code"] == "user_not_allowed"
    status, answer = cluster.api("POST", "/job", {"cmd": "true", "workers": ["pi2"], "user": "No Body"})
    assert status == 400 and answer["error"]["code"] == "wrong_type"
    # Without "user" a job runs as the worker's own user (its default_user, when set).
    assert cluster.run("id -un", ["pi2"])["jobs"]["pi2"]["stdout"] == "root\n"
    from test_cli import pcci
    ran = pcci("run", "-w", "pi1", "-l", "nobody", "--", "id -un", env={"PCCI_URL": "http://127.0.0.1:%d"
                                                                        % cluster.api_port})
    assert ran.returncode == 0 and "nobody" in ran.stdout.splitlines()


def test_a_workers_default_user_applies_when_a_job_names_none(cluster):
    cluster.start_master()
    cluster.start_worker("pi1", allowed_users=["nobody"], default_user="nobody")
    assert cluster.run("id -un", ["pi1"])["jobs"]["pi1"]["stdout"] == "nobody\n"
    assert cluster.run("id -un", ["pi1"], user="root")["jobs"]["pi1"]["stdout"] == "root\n"
