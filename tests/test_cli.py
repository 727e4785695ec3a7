"""The pcci command as a user types it, against a real master and workers."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import KEY, REPO, kill_pids, pids_alive, wait_until


def pcci(*args, env=None, timeout=60, input=None):
    """`pcci ARGS` as a user runs it; its stdin is ``input``, else /dev/null (a non-terminal
    stdin is forwarded to the jobs, so an inherited one could block it)."""
    full_env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pcci", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=REPO, **({"input": input} if input is not None
                                                        else {"stdin": subprocess.DEVNULL}))


@pytest.fixture
def pis(cluster):
    cluster.start_master(api_tokens=["cli-token-" + "z" * 16])
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    cluster.env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    return cluster


def test_run_groups_identical_output_and_exits_with_the_largest_code(pis):
    result = pcci("run", "-w", "pi1,pi2", "--", "echo same; exit 3", env=pis.env)
    assert result.returncode == 3, result.stderr
    assert "pi[1-2] (exit 3)" in result.stdout and result.stdout.count("same") == 1


def test_run_shows_different_outputs_per_worker(pis):
    result = pcci("run", "-a", "-e", "X=1", "--", 'echo "$X" $(cat /proc/self/status | grep -c PPid)', env=pis.env)
    assert result.returncode == 0 and "pi[1-2] (exit 0)" in result.stdout and "1 1" in result.stdout


def test_run_async_prints_the_pool_id_and_pool_shows_it(pis):
    result = pcci("run", "--async", "-w", "pi1", "--", "echo later", env=pis.env)
    pool_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", pool_id)
    shown = pcci("pool", pool_id, "--wait", "20", env=pis.env)
    assert "later" in shown.stdout and "pi1 (exit 0)" in shown.stdout


def test_workers_and_pools_tables(pis):
    pcci("run", "--all", "--", "true", env=pis.env)
    workers = pcci("workers", env=pis.env)
    assert re.search(r"^pi1\s+online\s+127\.0\.0\.1", workers.stdout, re.M)
    pools = pcci("pools", env=pis.env)
    assert "done" in pools.stdout and "succeeded=2" in pools.stdout


def test_kill_from_the_cli(pis):
    pool_id = pcci("run", "--async", "-w", "pi1", "--", "sleep 60", env=pis.env).stdout.strip()
    wait_until(lambda: pis.api("GET", "/workers")[1]["workers"][0]["runningJobs"], what="running")
    result = pcci("kill", pool_id, env=pis.env)
    assert result.stdout.strip() == "pi1: signalled"
    again = pcci("kill", "--json", pool_id, env=pis.env)
    assert json.loads(again.stdout) == {"id": pool_id, "workers": {"pi1": "already_ended"}}


def test_wrong_token_is_reported_plainly_with_its_own_status(pis):
    result = pcci("workers", env=dict(pis.env, PCCI_TOKEN="nope-" + "n" * 20))
    assert result.returncode == 77 and "not one this master accepts" in result.stderr


def test_unreachable_master_is_reported_plainly_with_its_own_status():
    result = pcci("workers", "--url", "http://127.0.0.1:9")
    assert result.returncode == 69 and "cannot reach the master" in result.stderr


def test_a_request_the_master_refuses_exits_1_and_a_usage_error_exits_2(pis):
    result = pcci("pool", "01a229b2-42fb-71e9-a463-f969feb65bc5", env=pis.env)
    assert result.returncode == 1 and "no pool with id" in result.stderr
    result = pcci("run", "-a", "-e", "FOO", "--", "true", env=pis.env)
    assert result.returncode == 2 and "expected NAME=VALUE, got 'FOO'" in result.stderr
    assert "Traceback" not in result.stderr


def under_a_terminal(args, env):
    """Start `pcci ARGS` with its stdout and stderr on a pseudo-terminal; (process, reader)."""
    controller, terminal = pty.openpty()
    # Ctrl-C as at an interactive prompt: a suite started in the background (`cmd &` in a
    # script) has SIGINT ignored, which children inherit and Python then leaves ignored.
    process = subprocess.Popen([sys.executable, "-m", "pcci", *args], stdout=terminal, stderr=terminal,
                               stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=REPO, **env), cwd=REPO,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(terminal)
    seen = []

    def read(until, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and until not in "".join(seen):
            if select.select([controller], [], [], 0.2)[0]:
                try:
                    seen.append(os.read(controller, 65536).decode(errors="replace"))
                except OSError:
                    break
        return "".join(seen)
    return process, read


def test_on_a_terminal_run_shows_progress_while_it_waits(pis):
    process, read = under_a_terminal(["run", "-w", "pi1,pi2", "--", "sleep 1.5; echo fine"], pis.env)
    text = read("(exit 0)")
    assert process.wait(20) == 0
    assert "0/2 done \u00b7 0 failed \u00b7 2 running" in text and "fine" in text
    piped = pcci("run", "-w", "pi1", "--", "sleep 1.2; echo piped", env=pis.env)
    assert "done \u00b7" not in piped.stderr and "piped" in piped.stdout


def test_ctrl_c_kills_the_pools_jobs_and_exits_130_with_the_pool_id(pis, tmp_path):
    pid_file = tmp_path / "pid"
    process, read = under_a_terminal(["run", "-w", "pi1", "--", "echo $$ > %s; exec sleep 300" % pid_file],
                                     pis.env)
    read("1 running")
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="job started"))
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 130
        text = read("pcci: pool ")
        pool_id = re.search(r"pcci: pool (\S+)", text).group(1)
        assert "killing the running jobs" in text and "killed on 1 worker(s): pi1" in text
        assert pis.api("GET", "/pool/%s?wait=10" % pool_id)[1]["jobs"]["pi1"]["state"] == "killed"
        wait_until(lambda: not pids_alive([pid]), timeout=10, what="the job's process gone")
    finally:
        kill_pids([pid])


def test_stream_prints_lines_as_they_come_prefixed_with_the_node(pis, tmp_path):
    flag = tmp_path / "go"
    process, read = under_a_terminal(["run", "--stream", "-w", "pi1,pi2", "--",
                                      "echo early; while [ ! -e %s ]; do sleep 0.05; done; echo late" % flag],
                                     pis.env)
    try:
        text = read("pi2: early")
        text = read("pi1: early")
        assert "late" not in text and process.poll() is None      # printed while the jobs still run
        flag.touch()
        assert process.wait(20) == 0
        assert {"pi1: late", "pi2: late"} <= set(read("pi2: late").replace("\r", "").splitlines())
    finally:
        flag.touch()


def test_stream_sends_stdout_and_stderr_apart_and_exits_with_the_pools_status(pis):
    done = pcci("run", "--stream", "-w", "pi1,pi2", "--",
                "for i in 1 2 3; do echo out $i; echo err $i >&2; done; printf tail; exit 4", env=pis.env)
    assert done.returncode == 4
    lines = done.stdout.splitlines()
    for name in ("pi1", "pi2"):
        assert [line for line in lines if line.startswith(name + ":")] == \
            ["%s: out 1" % name, "%s: out 2" % name, "%s: out 3" % name, "%s: tail" % name]
        assert "%s: err 2" % name in done.stderr and "pcci: %s: exit 4" % name in done.stderr
    assert "err" not in done.stdout
    # A pool run earlier is followed the same way, and ends at once.
    pool_id = pcci("run", "--async", "-w", "pi1", "--", "echo again", env=pis.env).stdout.strip()
    followed = pcci("pool", pool_id, "--follow", env=pis.env)
    assert followed.returncode == 0 and followed.stdout == "pi1: again\n"


def test_ctrl_c_while_streaming_kills_the_jobs_on_the_worker(pis, tmp_path):
    pid_file = tmp_path / "pid"
    process, read = under_a_terminal(["run", "--stream", "-w", "pi1", "--",
                                      "echo started; echo $$ > %s; exec sleep 300" % pid_file], pis.env)
    read("pi1: started")
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="job started"))
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 130
        text = read("pcci: pool ")
        assert "killed on 1 worker(s): pi1" in text
        wait_until(lambda: not pids_alive([pid]), timeout=10, what="the job's process gone")
    finally:
        kill_pids([pid])


def test_keygen_prints_a_fresh_key():
    first, second = pcci("keygen").stdout.strip(), pcci("keygen").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", first) and first != second


def test_check_config_names_every_problem(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("master_port: high\nnode_nam: x\ncluster_key: " + KEY + "\n")
    path.chmod(0o600)
    result = pcci("check-config", "worker", str(path))
    assert result.returncode == 1
    assert "%s: master_port: expected a port" % path in result.stderr
    assert "%s: node_nam: unknown key" % path in result.stderr
    path.write_text("master_host: 10.0.0.1\ncluster_key: " + KEY + "\n")
    path.chmod(0o600)
    assert pcci("check-config", "worker", str(path)).returncode == 0


@pytest.mark.process
def test_service_with_a_bad_config_exits_with_ex_config(tmp_path):
    path = tmp_path / "master.yaml"
    path.write_text("api_port: -1\n")
    result = pcci("master", "--config", str(path))
    assert result.returncode == 78 and "api_port" in result.stderr


@pytest.mark.process
def test_unconfigured_worker_says_what_to_do_and_exits_cleanly(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("cluster_key_file: %s\nstate_dir: %s\n" % (tmp_path / "absent.key", tmp_path / "state"))
    result = pcci("worker", "--config", str(path))
    assert result.returncode == 0
    assert "not configured yet: master_host is not set" in result.stderr
    path.write_text("master_host: 127.0.0.1\ncluster_key_file: %s\nstate_dir: %s\n"
                    % (tmp_path / "absent.key", tmp_path / "state"))
    result = pcci("worker", "--config", str(path))
    assert result.returncode == 0 and "copy it from the master" in result.stderr


def test_the_token_can_come_from_a_file_and_on_the_command_line_it_is_warned_about(pis, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("# my token\n%s\n" % pis.token)
    env = {"PCCI_URL": pis.env["PCCI_URL"]}
    result = pcci("workers", "--token-file", str(token_file), env=env)
    assert result.returncode == 0 and "pi1" in result.stdout and "warning" not in result.stderr
    result = pcci("workers", env=dict(env, PCCI_TOKEN_FILE=str(token_file)))
    assert result.returncode == 0
    result = pcci("workers", "--token", pis.token, env=env)
    assert result.returncode == 0 and "--token shows the token to every user" in result.stderr
    result = pcci("workers", "--token-file", str(tmp_path / "absent"), env=env)
    assert result.returncode == 2 and "cannot read the token file" in result.stderr


# -- the man page and completion cannot drift from the parser ------------------------------

def parser_options():
    """{command: set of option strings} from pcci's own parser ("" for the top level)."""
    import argparse
    from pcci.cli.main import build_parser
    found = {}

    def walk(parser, command):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, name)
            else:
                found.setdefault(command, set()).update(action.option_strings)
    walk(build_parser(), "")
    return found


def completions(*words):
    """What bash offers after `pcci WORDS...` (the last word is being completed), with
    Debian's bash-completion and the packaged script loaded."""
    script = ("source /usr/share/bash-completion/bash_completion; source %s; COMP_WORDS=(pcci %s); "
              "COMP_CWORD=%d; COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}; _pcci; "
              "printf '%%s\\n' \"${COMPREPLY[@]}\"" % (os.path.join(REPO, "debian", "pcci.bash-completion"),
                                                       " ".join("'%s'" % w for w in words), len(words)))
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.skipif(not os.path.exists("/usr/share/bash-completion/bash_completion"),
                    reason="bash-completion is not installed (./scripts/setup-deps)")
def test_bash_completion_offers_every_command_and_exactly_each_commands_options():
    options = parser_options()
    commands = set(options) - {""}
    assert commands <= completions("")
    for command, strings in options.items():
        if command:
            offered = {word for word in completions(command, "-") if word.startswith("-")}
            assert offered == strings, command
    assert completions("pools", "--status", "") == {"running", "done"}
    assert completions("--url", "https://m:8080", "wor") == {"workers", "worker"}   # an option's value is no command


def test_the_man_page_describes_every_option_of_every_command():
    page = open(os.path.join(REPO, "debian", "man", "pcci.1")).read()
    options_section = page.split(".SH OPTIONS", 1)[1].split("\n.SH ", 1)[0]
    missing = sorted({option for strings in parser_options().values() for option in strings
                      if option.replace("-", "\\-") not in options_section})
    assert missing == []
    for section in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"):
        assert "\n.SH %s\n" % section in page, section
    for name in ("pcci-master.1", "pcci-worker.1"):
        service = open(os.path.join(REPO, "debian", "man", name)).read()
        for section in ("OPTIONS", "EXIT STATUS", "FILES", "EXAMPLES"):
            assert "\n.SH %s\n" % section in service, (name, section)
        assert "\\-\\-config" in service.split(".SH OPTIONS", 1)[1]


def test_stream_prints_a_line_holding_a_byte_that_is_not_utf8_whole(pis):
    # Latin-1 "é" (0xe9) decodes to U+FFFD, three bytes once re-encoded: the offsets of the
    # pieces must not be counted in re-encoded bytes, or the CLI skips what it thinks it printed.
    done = pcci("run", "--stream", "-w", "pi1", "--", r"printf 'o\351ne 1\n'; sleep 0.3; printf 'two\n'",
                env=pis.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["pi1: o\ufffdne 1", "pi1: two"]
