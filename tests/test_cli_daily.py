"""Daily work with the pcci command against a real master and workers: the exit status of
every state (pcci(1)'s EXIT STATUS table), grouped output, scripts, stdin, --outdir."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, kill_pids, wait_until
from test_cli import pcci


def test_every_state_short_of_success_gives_its_status(cluster, tmp_path):
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16], lost_after="1s", heartbeat_timeout="1s")
    for name in ("pi1", "pi2", "pi3", "pi4"):
        cluster.start_worker(name)
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    cluster.workers["pi3"].stop()
    wait_until(lambda: not cluster.api("GET", "/workers")[1]["workers"][2]["online"], what="pi3 offline")

    assert pcci("run", "-w", "pi1", "--", "true", env=env).returncode == 0
    assert pcci("run", "-w", "pi1", "--", "exit 3", env=env).returncode == 3
    timed_out = pcci("run", "-w", "pi1", "-u", "1", "--", "sleep 32 & echo started", env=env)
    assert "timed_out" in timed_out.stdout and timed_out.returncode == 124, timed_out
    offline = pcci("run", "-w", "pi3", "--", "true", env=env)
    assert "offline" in offline.stdout and offline.returncode == 255
    unknown = pcci("run", "-w", "pi1,nosuch", "--", "true", env=env)
    assert "unknown_worker" in unknown.stdout and unknown.returncode == 255
    skipped = pcci("run", "-w", "pi1,pi2", "--batch", "1", "--max-failures", "0", "--", "exit 1", env=env)
    assert "skipped" in skipped.stdout and skipped.returncode == 255
    refused = pcci("copy", os.path.join(REPO, "README.md"), "-w", "pi1", "--dest", "/nonexistent-dir/x", env=env)
    assert "copy refused" in refused.stderr and "pi1 (failed)" in refused.stdout and refused.returncode == 255, refused

    # killed: the run waits while another command kills its pool
    running = subprocess.Popen([sys.executable, "-m", "pcci", "run", "-w", "pi2", "--", "sleep 60"],
                               env=dict(os.environ, PYTHONPATH=REPO, **env), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pool_id = wait_until(lambda: [p["id"] for p in cluster.api("GET", "/pools?status=running")[1]["pools"]],
                             what="the pool running")[0]
        cluster.wait_running(pool_id, "pi2")
        assert pcci("kill", pool_id, env=env).returncode == 0
        out, _ = running.communicate(timeout=30)
        assert "killed" in out and running.returncode == 137
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()

    # lost: its worker dies while it runs and stays away longer than lost_after
    pid_file = tmp_path / "pid"
    lost = subprocess.Popen([sys.executable, "-m", "pcci", "run", "-w", "pi4", "--", "echo $$ > %s; exec sleep 60"
                             % pid_file], env=dict(os.environ, PYTHONPATH=REPO, **env), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job started")
        pids.append(int(pid_file.read_text()))
        cluster.workers["pi4"].kill()
        out, _ = lost.communicate(timeout=40)
        assert "lost" in out and lost.returncode == 255
    finally:
        kill_pids(pids)
        if lost.poll() is None:
            lost.kill()
            lost.wait()


def test_pool_gives_an_ended_pools_status_as_run_does_and_75_while_it_runs(cluster):
    """`pcci pool ID` (plain, --json, --follow) exits as `pcci run` would have, one pool per
    class of pcci(1)'s EXIT STATUS table."""
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16], heartbeat_timeout="1s")
    for name in ("pi1", "pi2", "pi3"):
        cluster.start_worker(name)
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    cluster.workers["pi3"].stop()
    wait_until(lambda: not cluster.api("GET", "/workers")[1]["workers"][2]["online"], what="pi3 offline")
    ended = {
        0: cluster.run("true", ["pi1", "pi2"]),
        3: cluster.run('[ "${PCCI_JOB_ID##*/}" = pi1 ] && exit 3; exit 1', ["pi1", "pi2"]),
        124: cluster.run("sleep 32 & echo started", ["pi1"], timeout=1),
        255: cluster.run("true", ["pi1", "pi3"]),                                     # offline
    }
    unknown = cluster.run("true", ["pi1", "nosuch"])
    skipped = cluster.run("exit 1", ["pi1", "pi2"], batch=1, maxFailures=0)
    assert {job["state"] for job in skipped["jobs"].values()} == {"failed", "skipped"}

    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 60", "workers": ["pi2"]})
    cluster.wait_running(submitted["id"], "pi2")
    running = pcci("pool", submitted["id"], env=env)
    assert "running" in running.stdout and running.returncode == 75, running
    assert pcci("kill", submitted["id"], env=env).returncode == 0
    ended[137] = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]
    assert ended[137]["jobs"]["pi2"]["state"] == "killed"

    for expected, pool in list(ended.items()) + [(255, unknown), (255, skipped)]:
        for options in ((), ("--json",), ("--follow",)):
            shown = pcci("pool", pool["id"], *options, env=env)
            assert shown.returncode == expected, (options, pool["states"], shown)


def test_grouped_output_keeps_stderr_on_stderr(cluster):
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16])
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    done = pcci("run", "-a", "--", 'echo out; echo "err of ${PCCI_JOB_ID##*/}" >&2', env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["-" * 15, "pi[1-2] (exit 0)", "-" * 15, "out"]
    assert sorted(done.stderr.splitlines()) == ["pi1: err of pi1", "pi2: err of pi2"]


def test_a_workers_running_jobs_are_gone_as_soon_as_its_pool_ends(cluster):
    # The default heartbeat (5 s): without the master's own bookkeeping the job would show
    # running for up to 5 s after its pool ended.
    cluster.start_master(heartbeat_timeout="20s")
    cluster.start_worker("pi1", heartbeat_interval="5s", link_timeout="20s")
    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 6", "workers": ["pi1"]})
    cluster.wait_running(submitted["id"], "pi1", timeout=30)
    pool = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]
    assert pool["status"] == "done"
    assert cluster.api("GET", "/workers")[1]["workers"][0]["runningJobs"] == []


def test_a_local_script_runs_on_every_worker_and_outdir_keeps_each_nodes_output(cluster, tmp_path):
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16])
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    script = tmp_path / "check.py"
    script.write_text("#!/usr/bin/python3\nimport os, sys\nnode = os.environ['PCCI_JOB_ID'].split('/')[1]\n"
                      "print(node, sys.argv[1:])\nprint('warn', node, file=sys.stderr)\n"
                      "sys.exit(3 if node == 'pi2' else 0)\n")
    out = tmp_path / "out"
    done = pcci("run", "-a", "--script", str(script), "--outdir", str(out), "--", "one", "two words", env=env)
    assert done.returncode == 3, done.stderr
    assert "pi1 ['one', 'two words']" in done.stdout and "pi2 (exit 3)" in done.stdout
    assert sorted(os.listdir(out)) == ["pi1.err", "pi1.out", "pi2.err", "pi2.out"]
    assert (out / "pi2.out").read_text() == "pi2 ['one', 'two words']\n"
    assert (out / "pi1.err").read_text() == "warn pi1\n"
    missing = pcci("run", "-a", "--script", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2 and "cannot read the script" in missing.stderr


def test_stdin_is_forwarded_to_every_job_unless_no_stdin_and_bounded(cluster):
    from raw_worker import RawWorker
    from pcci.protocol import MAX_STDIN_BYTES
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16])
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    done = pcci("run", "-a", "--", "cat; echo", env=env, input="line 1\nline 2")
    assert done.returncode == 0 and "pi[1-2] (exit 0)" in done.stdout and "line 1\nline 2\n" in done.stdout, done
    ignored = pcci("run", "-a", "--no-stdin", "--", "cat; echo end", env=env, input="not sent\n")
    assert ignored.returncode == 0 and "not sent" not in ignored.stdout and "end" in ignored.stdout
    pools_before = len(cluster.api("GET", "/pools")[1]["pools"])
    too_much = pcci("run", "-a", "--", "cat", env=env, input="x" * (MAX_STDIN_BYTES + 1))
    assert too_much.returncode == 2 and "standard input is over %d bytes" % MAX_STDIN_BYTES in too_much.stderr
    assert len(cluster.api("GET", "/pools")[1]["pools"]) == pools_before       # nothing was submitted

    # any bytes, through the API
    status, submitted = cluster.api("POST", "/job", {"cmd": "od -An -tx1", "workers": ["pi1"],
                                                     "stdin": {"base64": "AP8K"}})
    assert status == 202
    pool = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]
    assert pool["jobs"]["pi1"]["stdout"].split() == ["00", "ff", "0a"]

    # a worker of a release that cannot feed stdin: its job fails saying so, never runs without it
    old = RawWorker(cluster.worker_port, "old")
    try:
        cluster.wait_online("old")
        mixed = pcci("run", "-w", "pi1,old", "--", "cat", env=env, input="data\n")
        assert mixed.returncode == 255 and "pi1 (exit 0)" in mixed.stdout and "old (failed)" in mixed.stdout
        assert "old: pcci: worker old runs a release that cannot feed a job's stdin" in mixed.stderr
    finally:
        old.sock.close()


def test_clush_options_line_mode_no_prefix_merged_stderr_pick_user_and_connect_timeout(cluster):
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16])
    for name in ("pi1", "pi2", "pi10"):
        cluster.start_worker(name)
    url = "http://127.0.0.1:%d" % cluster.api_port
    env = {"PCCI_TOKEN": cluster.token}
    cmd = 'echo "out ${PCCI_JOB_ID##*/}"; echo err >&2'
    lines = pcci("--url", "http://127.0.0.1:1", "run", "--url", url, "-a", "-L", "--", cmd, env=env)
    assert lines.returncode == 0, lines.stderr
    assert lines.stdout.splitlines() == ["pi1: out pi1", "pi2: out pi2", "pi10: out pi10"]
    assert lines.stderr.splitlines() == ["pi1: err", "pi2: err", "pi10: err"]
    bare = pcci("--url", url, "run", "-a", "-L", "-N", "-q", "--", cmd, env=env)
    assert bare.stdout.splitlines() == ["out pi1", "out pi2", "out pi10"]
    merged = pcci("run", "--url", url, "-w", "pi1", "-B", "-S", "--", cmd, env=env)
    assert merged.stdout.splitlines()[-2:] == ["out pi1", "err"] and merged.stderr == ""
    picked = pcci("run", "--url", url, "-a", "--pick", "2", "-f", "1", "--json", "--", "true", env=env)
    assert picked.returncode == 0 and len(json.loads(picked.stdout)["jobs"]) == 2
    as_user = pcci("run", "--url", url, "-a", "-l", "nobody-here", "--", "true", env=env)
    assert as_user.returncode == 1 and "nobody-here" in as_user.stderr
    cluster.workers["pi10"].stop()
    wait_until(lambda: not {w["name"]: w for w in cluster.api("GET", "/workers")[1]["workers"]}["pi10"]["online"],
               what="pi10 offline")
    waited = pcci("run", "--url", url, "-w", "pi10", "-t", "0.5", "--", "true", env=env)
    assert waited.returncode == 255 and "pi10 (offline)" in waited.stdout


@pytest.mark.skipif(not os.path.exists("/usr/share/bash-completion/bash_completion"),
                    reason="bash-completion is not installed (./scripts/setup-deps)")
def test_bash_completes_worker_names_labels_and_pool_ids_from_the_master(cluster, tmp_path):
    cluster.start_master(api_tokens=["cli-token-" + "s" * 16])
    cluster.start_worker("pi1", labels={"model": "pi4"})
    cluster.start_worker("pi2")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    pool_id = cluster.run("true", ["pi1"])["id"]
    bin_dir = tmp_path / "bin"          # `pcci` as installed: on PATH
    bin_dir.mkdir()
    (bin_dir / "pcci").write_text("#!/bin/sh\nPYTHONPATH=%s exec %s -m pcci \"$@\"\n" % (REPO, sys.executable))
    (bin_dir / "pcci").chmod(0o755)

    def complete(*words, extra=None):
        script = ("source /usr/share/bash-completion/bash_completion; source %s; COMP_WORDS=(pcci %s); "
                  "COMP_CWORD=%d; COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}; _pcci; "
                  "printf '%%s\\n' \"${COMPREPLY[@]}\"" % (os.path.join(REPO, "debian", "pcci.bash-completion"),
                                                           " ".join("'%s'" % w for w in words), len(words)))
        full = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), **dict(env, **(extra or {})))
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=full)
        return set(done.stdout.split())

    assert complete("run", "-w", "") == {"pi1", "pi2"}
    assert complete("run", "-g", "mo") == {"model=pi4"}
    assert pool_id in complete("pool", "")
    # the --url on the line is the master asked; one that does not answer offers nothing, at once
    assert complete("workers", "--url", env["PCCI_URL"], "-x", "pi", extra={"PCCI_URL": "http://127.0.0.1:1"}) \
        == {"pi1", "pi2"}
    assert complete("run", "-w", "", extra={"PCCI_URL": "http://127.0.0.1:1"}) == set()
