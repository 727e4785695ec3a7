from pcci.cli import output


def job(stdout, state="succeeded", code=0, signal=None):
    return {"stdout": stdout, "stderr": "", "state": state, "exitCode": code, "signal": signal}


def test_identical_outputs_are_grouped_like_clush_b():
    pool = {"jobs": {"n1": job("a\n"), "n2": job("b\n"), "n3": job("a\n")}}
    text, errors = output.render_pool(pool)
    assert errors == ""
    assert "n[1,3] (exit 0)" in text and "n2 (exit 0)" in text
    assert text.count("a") == 1


def test_exit_status_is_the_largest_exit_code():
    assert output.pool_exit_status({"jobs": {"a": job("", "failed", 3), "b": job("", "failed", 1)}}) == 3


def test_job_that_never_ran_makes_the_exit_status_255():
    assert output.pool_exit_status({"jobs": {"a": job(""), "b": job("", "offline", None)}}) == 255


def test_every_state_short_of_success_gives_a_non_zero_status_even_with_exit_code_0():
    expected = {"succeeded": 0, "failed": 1, "timed_out": 124, "killed": 137, "lost": 255, "offline": 255,
                "unknown_worker": 255, "skipped": 255}
    for state, status in expected.items():
        code = 0 if state in ("succeeded", "timed_out", "killed") else (1 if state == "failed" else None)
        assert output.pool_exit_status({"jobs": {"a": job("", state, code)}}) == status, state
    assert output.pool_exit_status({"jobs": {"a": job("", "failed", None)}}) == 255     # never started, copy refused
    assert output.pool_exit_status({"jobs": {"a": job("", "timed_out", 143, "SIGTERM"), "b": job("", "failed", 2)}}) == 124



def test_a_shown_pool_has_runs_status_once_ended_and_75_while_it_runs():
    ended = {"status": "done", "jobs": {"a": job("", "timed_out", 0), "b": job("", "failed", 2)}}
    assert output.shown_pool_status(ended) == output.pool_exit_status(ended) == 124
    assert output.shown_pool_status({"status": "done", "jobs": {"a": job("")}}) == 0
    running = {"status": "running", "jobs": {"a": job(""), "b": job("", "running", None)}}
    assert output.shown_pool_status(running) == 75

def test_grouped_output_keeps_stderr_on_stderr_prefixed_by_node_as_clush_b():
    pool = {"jobs": {"n1": dict(job("same\n"), stderr="warn 1\n"), "n2": dict(job("same\n"), stderr="warn 2\n"),
                     "n3": job("same\n")}}
    out, err = output.render_pool(pool)
    assert out.count("same") == 1 and "n[1-3] (exit 0)" in out and "warn" not in out
    assert err.splitlines() == ["n1: warn 1", "n2: warn 2"]


def test_merged_stderr_groups_it_with_stdout_as_clush_B():
    pool = {"jobs": {"n1": dict(job("same\n"), stderr="warn\n"), "n2": job("same\n")}}
    out, err = output.render_pool(pool, merge_stderr=True)
    assert err == "" and "n1 (exit 0)" in out and "n2 (exit 0)" in out and "warn" in out


def test_line_mode_prefixes_each_line_and_sorts_nodes_naturally_and_N_drops_the_prefix():
    pool = {"jobs": {"pi10": dict(job("a\nb\n"), stderr="e\n"), "pi2": job("c\n")}}
    out, err = output.render(pool, output.Display(line_mode=True))
    assert out.splitlines() == ["pi2: c", "pi10: a", "pi10: b"] and err == "pi10: e"
    out, err = output.render(pool, output.Display(line_mode=True, prefix=False))
    assert out.splitlines() == ["c", "a", "b"] and err == "e"
    out, err = output.render(pool, output.Display(prefix=False))
    assert "pi10 (exit 0)" in out and err == "e"
