"""Attacks on the REST API and the worker link, each a reproduction as a user would see it
(docs/api.md, "Attacked on 2026-12-05"): real masters and workers, loopback only."""

import os
import socket
import subprocess

import pytest

from conftest import wait_until

MB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "small-disk"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(path)], check=True, timeout=30)
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def test_a_fetch_larger_than_the_masters_free_disk_is_refused_and_the_master_keeps_storing(
        cluster, small_disk, tmp_path):
    cluster.start_master(state_dir=os.path.join(small_disk, "master"))
    cluster.start_worker("pi1")
    huge = tmp_path / "huge.img"
    with open(huge, "wb") as handle:
        handle.truncate(400 * MB)           # sparse: cheap to read, 400 MiB to store
    status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(huge)})
    assert status == 202, submitted
    status, pool = cluster.api("GET", "/pool/%s?wait=60" % submitted["id"])
    job = pool["jobs"]["pi1"]
    assert pool["status"] == "done" and job["state"] != "succeeded", job
    disk = os.statvfs(small_disk)
    assert disk.f_bavail * disk.f_frsize > 32 * MB          # the spool did not eat the disk
    assert "storage" in job["stderr"] or "disk" in job["stderr"], job
    done = cluster.run("echo still here", ["pi1"])
    assert done["jobs"]["pi1"]["stdout"] == "still here\n"


def test_two_uploads_that_each_fit_but_not_together_the_second_is_refused(cluster, small_disk):
    """Each PUT /files once saw the same free disk: two at once filled it to the last byte."""
    cluster.start_master(state_dir=os.path.join(small_disk, "master"))
    size = 80 * MB
    first = socket.create_connection(("127.0.0.1", cluster.api_port), timeout=30)
    try:
        first.sendall(("PUT /files/%s?size=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
                       % ("a" * 64, size, size)).encode() + b"\0" * MB)
        part = os.path.join(small_disk, "master", "files", "a" * 64 + ".part")
        wait_until(lambda: os.path.exists(part) and os.path.getsize(part) == MB, what="the first upload under way")
        status, refused = cluster.api("PUT", "/files/%s?size=%d" % ("b" * 64, size), raw=b"\0" * MB)
        assert (status, refused["error"]["code"]) == (503, "storage_full"), refused
        assert "promised" in refused["error"]["message"]
    finally:
        first.close()
    assert "PUT /files/%s by local" % ("b" * 64) in cluster.master.log()
    # The first one's promise ends with its connection: a small upload fits again.
    wait_until(lambda: cluster.api("PUT", "/files/%s?size=1" % ("c" * 64), raw=b"x")[1]["error"]["code"]
               == "sha256_mismatch", what="room again")
