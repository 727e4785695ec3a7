import logging

from pcci.log_budget import BudgetedLog, LogBudget


def test_a_burst_is_written_then_lines_are_counted_not_written():
    budget = LogBudget(burst=3, window=10.0)
    assert [budget.take("tls", 0.1 * n) for n in range(5)] == [0, 0, 0, None, None]


def test_the_next_line_after_a_window_says_how_many_were_left_out():
    budget = LogBudget(burst=2, window=10.0)
    for n in range(7):
        budget.take("tls", n)
    assert budget.take("tls", 10.0) == 5
    assert budget.take("tls", 10.5) == 0


def test_each_kind_has_its_own_budget():
    budget = LogBudget(burst=1, window=10.0)
    assert budget.take("tls", 0) == 0 and budget.take("tls", 0) is None
    assert budget.take("refused", 0) == 0


def test_a_flood_writes_a_bounded_number_of_lines(caplog):
    now = [0.0]
    out = BudgetedLog(logging.getLogger("pcci.test"), lambda: now[0], LogBudget(burst=5, window=10.0))
    with caplog.at_level(logging.INFO, logger="pcci.test"):
        for n in range(3222):           # as many as a 30 s flood wrote before
            now[0] = n * 30.0 / 3222
            out.warning("tls", "worker connection from %s refused: TLS handshake failed", "127.0.%d.1" % (n % 17))
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) <= 5 * 3 + 1
    assert sum("more suppressed since the last such line" in line for line in lines) >= 2


def test_a_level_that_is_off_costs_no_budget(caplog):
    out = BudgetedLog(logging.getLogger("pcci.test.quiet"), lambda: 0.0, LogBudget(burst=1))
    with caplog.at_level(logging.WARNING, logger="pcci.test.quiet"):
        out.info("x", "not shown")
        out.warning("x", "shown")
    assert [record.getMessage() for record in caplog.records] == ["shown"]
