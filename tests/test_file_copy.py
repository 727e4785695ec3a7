"""Copying a file to workers, as clush -c and pdcp do but atomically: the worker's writer on
a real filesystem (mode, owner, replace, refusals that never follow a symbolic link), and
POST /copy and `pcci copy` through a real master and workers."""

import base64
import os
import pwd
import stat

import pytest

from pcci.worker.file_copy import TEMPORARY_PREFIX, CopyRefused, write
from test_cli import pcci


def test_a_file_is_written_whole_with_its_mode_and_nothing_left_beside_it(tmp_path):
    dest = tmp_path / "app.conf"
    write(str(dest), b"x = 1\n", mode=0o640)
    assert dest.read_bytes() == b"x = 1\n" and stat.S_IMODE(dest.stat().st_mode) == 0o640
    write(str(dest), b"x = 2\n")                        # no mode: the replaced file's is kept
    assert dest.read_bytes() == b"x = 2\n" and stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert [name for name in os.listdir(tmp_path) if name.startswith(TEMPORARY_PREFIX)] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_owner_is_set_when_the_worker_may(tmp_path):
    dest = tmp_path / "owned"
    write(str(dest), b"data", owner="nobody:nogroup")
    assert dest.stat().st_uid == pwd.getpwnam("nobody").pw_uid


def test_a_symbolic_link_is_never_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("keep me")
    (tmp_path / "link").symlink_to(secret)
    with pytest.raises(CopyRefused, match="not a regular file"):
        write(str(tmp_path / "link"), b"overwritten?")
    assert secret.read_text() == "keep me" and (tmp_path / "link").is_symlink()
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real)
    with pytest.raises(CopyRefused, match="through a symbolic link"):
        write(str(tmp_path / "via" / "file"), b"x")
    assert os.listdir(real) == []


@pytest.mark.parametrize("dest, says", [("relative/file", "not an absolute path"), ("/tmp/../etc/x", "plain path"),
                                        ("/tmp/dir/", "plain path"), ("/no/such/dir/file", "does not exist")])
def test_a_bad_destination_is_refused_with_the_reason(dest, says):
    with pytest.raises(CopyRefused, match=says):
        write(dest, b"x")


def test_post_copy_writes_the_file_on_each_worker_and_reports_per_node(cluster, tmp_path):
    cluster.start_master(max_body_bytes=256 * 1024)
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    dest = tmp_path / "motd"
    content = b"welcome to the cluster\n" * 100
    status, submitted = cluster.api("POST", "/copy", {"workers": "pi[1-2]", "dest": str(dest), "mode": "0600",
                                                      "content": base64.b64encode(content).decode()})
    assert status == 202, submitted
    pool = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]
    assert pool["states"] == {"succeeded": 2}
    assert pool["copy"]["dest"] == str(dest) and pool["copy"]["bytes"] == len(content) and "content" not in pool["copy"]
    assert pool["jobs"]["pi1"]["stdout"] == "wrote %d bytes to %s\n" % (len(content), dest)
    assert dest.read_bytes() == content and stat.S_IMODE(dest.stat().st_mode) == 0o600
    # A node where the path is refused fails with the reason; the other nodes do not care.
    (tmp_path / "target").write_text("untouched")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    status, submitted = cluster.api("POST", "/copy", {"workers": ["pi1"], "dest": str(tmp_path / "link"),
                                                      "content": base64.b64encode(b"evil").decode()})
    job = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]["jobs"]["pi1"]
    assert job["state"] == "failed" and "not a regular file" in job["stderr"]
    assert (tmp_path / "target").read_text() == "untouched"
    # Too large for one frame: refused at the API with the limit and how to raise it.
    big = base64.b64encode(b"\0" * (200 * 1024)).decode()
    status, answer = cluster.api("POST", "/copy", {"workers": ["pi1"], "dest": str(dest), "content": big})
    assert status == 413 and "max_frame_bytes" in answer["error"]["message"]
    assert dest.read_bytes() == content


def test_pcci_copy_sends_a_local_file_and_prints_each_nodes_outcome(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    source = tmp_path / "local.conf"
    source.write_text("setting = on\n")
    dest = tmp_path / "remote.conf"
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port}
    done = pcci("copy", str(source), "-w", "pi1", "--dest", str(dest), "--mode", "0644", env=env)
    assert done.returncode == 0 and "pi1 (exit 0)" in done.stdout, done.stderr
    assert dest.read_text() == "setting = on\n"
    refused = pcci("copy", str(source), "-w", "pi1", "--dest", "relative.conf", env=env)
    assert refused.returncode == 1 and "'dest' must be the absolute path" in refused.stderr
