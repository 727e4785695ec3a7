"""Spawn paths for one job (`sh -c true`, pipes, new session), on a gevent hub.

Why the worker uses the stdlib Popen (vfork + exec) with a pidfd, not gevent.subprocess.

    python3 bench/spawn.py [ROUNDS]     (default 300)
"""

import os
import subprocess
import sys
import time

import gevent
import gevent.socket
from gevent import subprocess as gevent_subprocess

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci.worker import cgroups  # noqa: E402
from pcci.worker.runner import Runner  # noqa: E402


def stdlib_popen_pidfd():
    process = subprocess.Popen(["/bin/sh", "-c", "true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    pidfd = os.pidfd_open(process.pid)
    gevent.socket.wait_read(pidfd)
    os.close(pidfd)
    process.wait()
    process.stdout.close()
    process.stderr.close()


def gevent_popen():
    process = gevent_subprocess.Popen(["/bin/sh", "-c", "true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, start_new_session=True)
    process.communicate()


def pcci_runner(rounds, job_cgroups=None):
    done = []
    runner = Runner("/bin/sh", 1 << 20, 1.0, done.append, cgroups=job_cgroups)
    started = time.perf_counter()
    for n in range(rounds):
        runner.start("p/%d" % n, "true")
        while len(done) <= n:
            gevent.sleep(0.0005)
    return (time.perf_counter() - started) / rounds


def timed(function, rounds):
    function()
    started = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - started) / rounds


def main(rounds):
    print("stdlib Popen + pidfd (PCCI's path)  %.2f ms" % (timed(stdlib_popen_pidfd, rounds) * 1000))
    print("gevent.subprocess.Popen             %.2f ms" % (timed(gevent_popen, rounds) * 1000))
    print("PCCI Runner, start to result        %.2f ms" % (pcci_runner(rounds) * 1000))
    with open("/proc/self/mountinfo") as handle:
        mount = cgroups.v2_mount(handle.read())
    if mount is None or os.geteuid() != 0:
        print("PCCI Runner with a cgroup per job   (needs root and a cgroup v2 hierarchy)")
        return
    base = os.path.join(mount, "pcci-bench-%d" % os.getpid())
    os.mkdir(base)
    try:
        seconds = pcci_runner(rounds, cgroups.JobCgroups(base))
        print("PCCI Runner with a cgroup per job   %.2f ms" % (seconds * 1000))
    finally:
        os.rmdir(base)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
