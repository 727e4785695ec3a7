from pcci.cli import output


def job(stdout, state="succeeded", code=0, signal=None):
    return {"stdout": stdout, "stderr": "", "state": state, "exitCode": code, "signal": signal}


def test_identical_outputs_are_grouped_like_clush_b():
    pool = {"jobs": {"n1": job("a\n"), "n2": job("b\n"), "n3": job("a\n")}}
    text = output.render_pool(pool)
    assert "n[1,3] (exit 0)" in text and "n2 (exit 0)" in text
    assert text.count("a") == 1


def test_exit_status_is_the_largest_exit_code():
    assert output.pool_exit_status({"jobs": {"a": job("", "failed", 3), "b": job("", "failed", 1)}}) == 3


def test_job_that_never_ran_makes_the_exit_status_255():
    assert output.pool_exit_status({"jobs": {"a": job(""), "b": job("", "offline", None)}}) == 255
