"""Finding the cgroup v2 hierarchy and deciding whether jobs get cgroups (pure parts)."""

import pytest

from pcci.worker import cgroups

HYBRID = """\
25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
"""
UNIFIED = "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def test_the_v2_mount_is_read_from_mountinfo_never_assumed():
    assert cgroups.v2_mount(HYBRID) == "/sys/fs/cgroup/unified"
    assert cgroups.v2_mount(UNIFIED) == "/sys/fs/cgroup"
    assert cgroups.v2_mount("25 1 0:23 / /proc rw - proc proc rw\n") is None


def test_own_path_is_the_unified_line_of_proc_self_cgroup():
    assert cgroups.own_path("1:cpu:/\n0::/system.slice/pcci-worker.service\n") == "/system.slice/pcci-worker.service"
    assert cgroups.own_path("4:memory:/x\n") is None


def test_job_cgroup_names_are_unique_per_job_and_safe_for_any_node_name():
    names = {cgroups.cgroup_name("pool-1/%s" % node) for node in ("pi1", "pi2", "a b", "x" * 255)}
    assert len(names) == 4 and all(len(n) < 100 and "/" not in n for n in names)
    assert all(n.startswith("pcci-job-pool-1-") for n in names)


def reader(files):
    def read(path):
        return files[path]
    return read


def test_auto_uses_cgroups_only_when_the_worker_is_alone_in_a_writable_cgroup(tmp_path):
    base = tmp_path / "system.slice" / "pcci-worker.service"
    base.mkdir(parents=True)
    mountinfo = "26 25 0:24 / %s rw - cgroup2 cgroup2 rw\n" % tmp_path
    files = {"/proc/self/mountinfo": mountinfo, "/proc/self/cgroup": "0::/system.slice/pcci-worker.service\n",
             str(base / "cgroup.procs"): "4242\n"}
    found = cgroups.detect("auto", reader(files), pid=4242)
    assert found is not None and found.base == str(base)
    files[str(base / "cgroup.procs")] = "4242\n17\n"       # a shell session, say: not the worker's own
    assert cgroups.detect("auto", reader(files), pid=4242) is None
    files["/proc/self/cgroup"] = "0::/\n"
    assert cgroups.detect("auto", reader(files), pid=4242) is None
    assert cgroups.detect("off", reader(files), pid=4242) is None


def test_on_refuses_to_start_without_cgroups_and_says_why():
    files = {"/proc/self/mountinfo": "25 1 0:23 / /proc rw - proc proc rw\n", "/proc/self/cgroup": "0::/\n"}
    with pytest.raises(RuntimeError, match="no cgroup v2 hierarchy"):
        cgroups.detect("on", reader(files), pid=1)
