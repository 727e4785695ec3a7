"""Copying a file to workers, as clush -c and pdcp do but atomically: the worker's writer on
a real filesystem (mode, owner, replace, refusals that never follow a symbolic link, a
directory swapped for a link while copies run, copies racing to one destination), and
POST /copy and `pcci copy` through a real master and workers."""

import base64
import ctypes
import hashlib
import os
import pwd
import stat
import subprocess
import sys
import threading

import pytest

from pcci.worker.file_copy import CopyRefused, write
from conftest import stop_process, wait_until
from test_cli import pcci

# The fallbacks a kernel without openat2 or a filesystem without O_TMPFILE takes.
WAYS = pytest.mark.parametrize("way", [{}, {"use_openat2": False, "use_tmpfile": False}],
                               ids=["openat2_tmpfile", "walk_named_temporary"])


@WAYS
def test_a_file_is_written_whole_with_its_mode_and_nothing_left_beside_it(tmp_path, way):
    dest = tmp_path / "app.conf"
    written = write(str(dest), b"x = 1\n", mode=0o640, **way)
    assert dest.read_bytes() == b"x = 1\n" and stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert written == (6, hashlib.sha256(b"x = 1\n").hexdigest())
    write(str(dest), b"x = 2\n", **way)                 # no mode: the replaced file's is kept
    assert dest.read_bytes() == b"x = 2\n" and stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["app.conf"]


@WAYS
@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_setuid_mode_is_kept_when_the_owner_changes_too(tmp_path, way):
    dest = tmp_path / "tool"
    write(str(dest), b"#!/bin/sh\n", mode=0o4755, owner="daemon:daemon", **way)
    info = dest.stat()
    assert stat.S_IMODE(info.st_mode) == 0o4755 and info.st_uid == pwd.getpwnam("daemon").pw_uid


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_owner_is_set_when_the_worker_may(tmp_path):
    dest = tmp_path / "owned"
    write(str(dest), b"data", owner="nobody:nogroup")
    assert dest.stat().st_uid == pwd.getpwnam("nobody").pw_uid


@WAYS
def test_a_symbolic_link_is_never_followed_a_final_one_is_replaced(tmp_path, way):
    secret = tmp_path / "secret"
    secret.write_text("keep me")
    secret.chmod(0o600)
    (tmp_path / "link").symlink_to(secret)
    write(str(tmp_path / "link"), b"new", **way)
    # The link itself became the new file (mode 0644: the target's is never looked at).
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_bytes() == b"new"
    assert stat.S_IMODE((tmp_path / "link").stat().st_mode) == 0o644 and secret.read_text() == "keep me"
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (tmp_path / "via").symlink_to(real)
    for dest in (tmp_path / "via" / "file", tmp_path / "via" / "sub" / "file"):
        with pytest.raises(CopyRefused, match="%s is a symbolic link" % (tmp_path / "via")):
            write(str(dest), b"x", **way)
    assert os.listdir(real) == ["sub"] and os.listdir(real / "sub") == []
    (tmp_path / "dir").mkdir()
    with pytest.raises(CopyRefused, match="not a regular file or a symbolic link"):
        write(str(tmp_path / "dir"), b"x", **way)


@WAYS
def test_a_chain_of_1500_symbolic_links_is_refused_with_the_reason(tmp_path, way):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "l0").symlink_to(real)
    for n in range(1, 1500):
        (tmp_path / ("l%d" % n)).symlink_to(tmp_path / ("l%d" % (n - 1)))
    with pytest.raises(CopyRefused, match="l1499 is a symbolic link"):
        write(str(tmp_path / "l1499" / "file"), b"x", **way)
    assert os.listdir(real) == []


# Swaps two paths (renameat2 RENAME_EXCHANGE) as fast as it can, for at most 60 s. A
# process, not a thread: a thread of the test shares its GIL and swaps only where the
# writer releases it, and the old writer lost 0 of 200 copies that way, against about a
# third with this.
SWAPPER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
deadline = time.monotonic() + 60
for n in range(10 ** 8):
    if libc.renameat2(-100, a, -100, b, 2) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    if n % 1000 == 0 and time.monotonic() > deadline:
        break
"""


@WAYS
def test_a_directory_swapped_for_a_link_while_copies_run_never_sends_one_outside(tmp_path, way):
    """The path's middle flips between a directory and a link to a decoy: every copy lands
    in the real directory or is refused; none lands in the decoy."""
    if not hasattr(ctypes.CDLL(None), "renameat2"):
        pytest.skip("libc has no renameat2")
    (tmp_path / "swap" / "inner").mkdir(parents=True)       # the real directory, while it is at swap
    (tmp_path / "decoy" / "inner").mkdir(parents=True)
    (tmp_path / "other").symlink_to(tmp_path / "decoy")
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(tmp_path / "swap"), str(tmp_path / "other")])
    outcomes = {"written": 0, "refused": 0}
    try:
        wait_until(lambda: (tmp_path / "swap").is_symlink(), what="the swapper at work")
        for n in range(200):
            try:
                write(str(tmp_path / "swap" / "inner" / ("f%d" % n)), b"data %d" % n, **way)
                outcomes["written"] += 1
            except CopyRefused:
                outcomes["refused"] += 1
        assert swapper.poll() is None, "the swapper stopped early"
    finally:
        stop_process(swapper)
    real = tmp_path / "other" if (tmp_path / "swap").is_symlink() else tmp_path / "swap"
    assert os.listdir(tmp_path / "decoy" / "inner") == [], outcomes
    assert len(os.listdir(real / "inner")) == outcomes["written"], outcomes


@WAYS
def test_two_copies_racing_to_one_destination_each_report_their_own_bytes(tmp_path, way):
    dest = str(tmp_path / "shared")
    contents = [bytes([65 + n]) * (1024 * 1024 + n) for n in range(2)]
    reports, errors = [[], []], []

    def copier(n):
        try:
            for _ in range(15):
                reports[n].append(write(dest, contents[n], **way))
        except Exception as exc:        # any failure is the test's failure, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=copier, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for n in range(2):
        assert set(reports[n]) == {(len(contents[n]), hashlib.sha256(contents[n]).hexdigest())}
    assert open(dest, "rb").read() in contents and os.listdir(tmp_path) == ["shared"]


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
    assert pool["jobs"]["pi1"]["stdout"] == "wrote %d bytes (sha256 %s) to %s\n" % (
        len(content), hashlib.sha256(content).hexdigest(), dest)
    assert dest.read_bytes() == content and stat.S_IMODE(dest.stat().st_mode) == 0o600
    # A node where the path is refused fails with the reason; the other nodes do not care.
    (tmp_path / "target").write_text("untouched")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    status, submitted = cluster.api("POST", "/copy", {"workers": ["pi1"], "dest": str(tmp_path / "link"),
                                                      "content": base64.b64encode(b"evil").decode()})
    job = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]["jobs"]["pi1"]
    assert job["state"] == "succeeded" and not (tmp_path / "link").is_symlink()
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


def test_a_refused_copy_says_why_in_the_cli_and_the_worker_logs_one_line(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    source = tmp_path / "local.conf"
    source.write_text("x\n")
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port}
    done = pcci("copy", str(source), "-w", "pi[1-2]", "--dest", str(tmp_path / "via" / "x.conf"), env=env)
    assert done.returncode == 255, done.stderr
    assert "pi[1-2] (failed)" in done.stdout and "exit None" not in done.stdout
    for name in ("pi1", "pi2"):     # the reason is the job's stderr: on stderr, by node (clush -b)
        assert "%s: pcci: copy refused: %s is a symbolic link" % (name, tmp_path / "via") in done.stderr
    for name in ("pi1", "pi2"):
        log = cluster.workers[name].log()
        assert log.count("refused: %s is a symbolic link" % (tmp_path / "via")) == 1 and "Traceback" not in log


def test_a_copy_through_a_chain_of_1500_links_ends_failed_through_real_processes(cluster, tmp_path):
    """It once raised RecursionError: no result, the pool stayed running and could not be killed."""
    cluster.start_master()
    cluster.start_worker("pi1")
    (tmp_path / "real").mkdir()
    (tmp_path / "l0").symlink_to(tmp_path / "real")
    for n in range(1, 1500):
        (tmp_path / ("l%d" % n)).symlink_to(tmp_path / ("l%d" % (n - 1)))
    status, submitted = cluster.api("POST", "/copy", {"workers": ["pi1"], "dest": str(tmp_path / "l1499" / "f"),
                                                      "content": "eA=="})
    assert status == 202, submitted
    pool = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]
    assert pool["status"] == "done" and pool["jobs"]["pi1"]["state"] == "failed"
    assert "l1499 is a symbolic link" in pool["jobs"]["pi1"]["stderr"] and os.listdir(tmp_path / "real") == []
