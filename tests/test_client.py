"""pcci.client, the documented Python client, against a real master and real workers."""

import pytest

from conftest import free_port
from pcci.client import Line, Master, PcciError, Pool, Worker

TOKEN = "client-token-" + "c" * 16
READER = "client-reader-" + "r" * 16


@pytest.fixture(scope="module")
def pis(module_cluster):
    """One master and two workers for the module: each test makes pools of its own and
    changes nothing the others read."""
    cluster = module_cluster
    cluster.start_master(api_tokens=[TOKEN, {"name": "viewer", "scope": "read", "token": READER}])
    cluster.start_worker("pi1", labels={"model": "pi4"})
    cluster.start_worker("pi2", labels={"model": "pi3"})
    return cluster


def master_of(cluster, token=TOKEN):
    return Master("http://127.0.0.1:%d" % cluster.api_port, token=token)


def test_run_returns_at_once_and_wait_gives_every_nodes_typed_result(pis):
    pool = master_of(pis).run("echo out-$(hostname -s) >/dev/null; echo hi; echo warn >&2; exit 3", "pi[1-2]")
    assert isinstance(pool, Pool) and pool.id and set(pool.jobs) == {"pi1", "pi2"}
    assert {job.state for job in pool.jobs.values()} <= {"queued", "running"} and not pool.done
    assert pool.wait(timeout=30) is pool and pool.done and not pool.ok
    for node, job in pool.jobs.items():
        assert (job.node, job.state, job.exit_code, job.stdout, job.stderr) == (node, "failed", 3, "hi\n", "warn\n")
        assert job.end_time >= job.start_time
    assert pool.exit_code == 3 and set(pool.failed()) == {"pi1", "pi2"}
    again = master_of(pis).pool(pool.id)
    assert again.jobs == pool.jobs


def test_run_with_wait_answers_the_finished_pool_in_the_same_request(pis):
    pool = master_of(pis).run("echo hi", "pi1", wait=30)
    assert pool.done and pool.ok and pool.jobs["pi1"].stdout == "hi\n"
    short = master_of(pis).run("sleep 0.5", "pi1", wait=0.01)
    assert not short.done and short.wait(timeout=30).ok


def test_options_reach_the_jobs(pis):
    pool = master_of(pis).run("echo $GREETING; pwd", ["pi2"], env={"GREETING": "hello"}, cwd="/tmp",
                              timeout=20).wait(timeout=30)
    assert pool.ok and pool.jobs["pi2"].stdout == "hello\n/tmp\n"
    assert master_of(pis).run("true", "model=pi4", exclude="pi2").wait(timeout=30).jobs.keys() == {"pi1"}
    assert master_of(pis).run("cat", "pi1", stdin="text in").wait(timeout=30).jobs["pi1"].stdout == "text in"
    fed = master_of(pis).run("od -An -tx1", "pi1", stdin=b"\x00\xff").wait(timeout=30)
    assert fed.jobs["pi1"].stdout.split() == ["00", "ff"]


def test_stream_yields_whole_lines_per_node_as_they_come(pis):
    pool = master_of(pis).run("echo one; sleep 0.5; echo two >&2; printf 'three'", "pi[1-2]")
    lines = list(pool.stream())
    assert all(isinstance(line, Line) for line in lines)
    for node in ("pi1", "pi2"):
        assert [(l.stream, l.text) for l in lines if l.node == node] == [
            ("stdout", "one"), ("stderr", "two"), ("stdout", "three")]
    assert pool.done and pool.ok and pool.jobs["pi1"].stdout == "one\nthree"   # read again, whole


def test_kill_ends_the_running_jobs(pis):
    pool = master_of(pis).run("sleep 60", "pi1")
    pis.wait_running(pool.id, "pi1")
    assert pool.kill()["workers"]["pi1"] == "signalled"
    assert pool.wait(timeout=30).jobs["pi1"].state == "killed"


def test_workers_are_typed_and_selected_by_target(pis):
    workers = master_of(pis, READER).workers()
    assert all(isinstance(w, Worker) for w in workers)
    assert {(w.name, w.online, w.labels["model"]) for w in workers} == {("pi1", True, "pi4"), ("pi2", True, "pi3")}
    assert [w.name for w in master_of(pis, READER).workers("model=pi3")] == ["pi2"]


def test_copy_writes_bytes_or_a_file_on_the_workers(pis, tmp_path):
    dest = tmp_path / "copied.bin"
    pool = master_of(pis).copy(b"\x00bytes\xff", str(dest), "pi1", mode="0640").wait(timeout=30)
    assert pool.ok and dest.read_bytes() == b"\x00bytes\xff" and oct(dest.stat().st_mode & 0o777) == "0o640"
    source = tmp_path / "source.txt"
    source.write_text("from a file\n")
    assert master_of(pis).copy(str(source), str(dest), ["pi2"]).wait(timeout=30).ok
    assert dest.read_text() == "from a file\n"


def test_errors_are_exceptions_carrying_the_apis_code_and_status(pis):
    with pytest.raises(PcciError) as raised:
        master_of(pis, "wrong-token-" + "w" * 16).workers()
    assert (raised.value.status, raised.value.code) == (401, "bad_token")
    with pytest.raises(PcciError) as raised:
        master_of(pis, READER).run("true", "pi1")
    assert (raised.value.status, raised.value.code) == (403, "insufficient_scope")
    with pytest.raises(PcciError) as raised:
        master_of(pis).run("true", "pi[1-")
    assert (raised.value.status, raised.value.code) == (400, "bad_target")
    with pytest.raises(PcciError) as raised:
        master_of(pis).pool("01a229b2-42fb-71e9-0000-000000000000")
    assert raised.value.status == 404
    slow = master_of(pis).run("sleep 30", "pi1")
    with pytest.raises(PcciError) as raised:
        slow.wait(timeout=0.5)
    assert raised.value.code == "timeout" and not slow.done
    slow.kill()                             # the module's workers are shared: leave them idle


def test_a_master_that_cannot_be_reached_is_passed_over_for_the_next(pis):
    dead = "http://127.0.0.1:%d" % free_port()
    master = Master("%s,http://127.0.0.1:%d" % (dead, pis.api_port), token=TOKEN)
    assert master.run("echo via-second", "pi1").wait(timeout=30).jobs["pi1"].stdout == "via-second\n"
    assert master.url == "http://127.0.0.1:%d" % pis.api_port
    with pytest.raises(PcciError) as raised:
        Master(dead, token=TOKEN).workers()
    assert "cannot reach the master at %s" % dead in str(raised.value) and raised.value.status is None


def test_from_environment_reads_what_the_pcci_command_reads(pis, monkeypatch, tmp_path):
    monkeypatch.setenv("PCCI_URL", "http://127.0.0.1:%d" % pis.api_port)
    token_file = tmp_path / "token"
    token_file.write_text("# the operator's token\n%s\n" % TOKEN)
    monkeypatch.setenv("PCCI_TOKEN_FILE", str(token_file))
    monkeypatch.delenv("PCCI_TOKEN", raising=False)
    master = Master.from_environment()
    assert master.url == "http://127.0.0.1:%d" % pis.api_port
    assert master.run("echo env", "pi1").wait(timeout=30).jobs["pi1"].stdout == "env\n"
