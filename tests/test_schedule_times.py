"""Due times, pure: "every N" and cron expressions, timezones, and what a master that was
away decides about the due times it missed."""

import datetime
import zoneinfo

import pytest

from pcci.master import schedule_times
from pcci.master.schedule_times import BadWhen, Plan, next_due, parse, plan

MINUTE = 60000


def ms(text, zone="UTC"):
    return int(datetime.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone)).timestamp() * 1000)


def test_every_is_due_at_multiples_of_its_interval_since_the_epoch():
    when = parse("every 30s")
    assert next_due(when, ms("2026-01-01T00:00:10")) == ms("2026-01-01T00:00:30")
    assert next_due(when, ms("2026-01-01T00:00:30")) == ms("2026-01-01T00:01:00")     # strictly after
    assert parse("every 2h").every_ms == 2 * 3600 * 1000
    assert parse("every 1d").every_ms == 86400 * 1000


@pytest.mark.parametrize("text", ["every 9s", "every 0s", "every 367d", "every 5", "every s", "every -1m",
                                  "every 1.5m", "sometimes", "", "* * * *", "* * * * * *", "61 * * * *",
                                  "*/5 * * * * ; rm", "x" * 300, None, 5])
def test_bad_when_is_refused_with_what_is_expected(text):
    with pytest.raises(BadWhen):
        parse(text)


def test_cron_is_read_in_the_schedules_timezone():
    when = parse("30 2 * * *", "Europe/Berlin")
    after = ms("2026-06-01T12:00:00", "Europe/Berlin")
    assert next_due(when, after) == ms("2026-06-02T02:30:00", "Europe/Berlin")
    utc = parse("30 2 * * *")
    assert next_due(utc, after) == ms("2026-06-02T02:30:00")


def test_cron_next_due_is_strictly_after_even_within_the_due_second():
    when = parse("*/5 * * * *")
    due = ms("2026-01-01T00:05:00")
    assert next_due(when, due) == due + 5 * MINUTE
    assert next_due(when, due + 400) == due + 5 * MINUTE
    assert next_due(when, due - 1) == due


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "", "UTC; DROP", "America", "Europe/", "/etc",
                                  "zone1970.tab", "A" * 65])
def test_unknown_timezones_are_refused(zone):
    with pytest.raises(BadWhen):
        parse("every 1m", zone)


def test_a_due_time_not_yet_come_is_waited_for():
    when = parse("every 1m")
    assert plan(when, False, ms("2026-01-01T00:00:00"), ms("2026-01-01T00:00:20"), 5000) == \
        Plan("wait", ms("2026-01-01T00:01:00"))


def test_a_due_time_within_the_grace_fires_late_ones_are_skipped_or_run_once():
    when = parse("every 1m")
    base = ms("2026-01-01T00:00:00")
    # Back 3 s after the due time, within a 5 s grace: it fires.
    assert plan(when, False, base, base + MINUTE + 3000, 5000) == Plan("fire", base + MINUTE)
    # Back 3.5 minutes later: three due times missed, the latest 30 s ago.
    now = base + 3 * MINUTE + 30000
    assert plan(when, False, base, now, 5000) == Plan("skip", base + 3 * MINUTE, 3)
    assert plan(when, True, base, now, 5000) == Plan("fire", base + 3 * MINUTE, 2)
    # The latest is within the grace: the two before it are missed (skipped together, or
    # run once), then it fires, late, at the next step.
    now = base + 3 * MINUTE + 1000
    assert plan(when, False, base, now, 5000) == Plan("skip", base + 2 * MINUTE, 2)
    assert plan(when, True, base, now, 5000) == Plan("fire", base + 2 * MINUTE, 1)
    assert plan(when, False, base + 2 * MINUTE, now, 5000) == Plan("fire", base + 3 * MINUTE)


def test_every_due_time_within_the_grace_fires_one_by_one():
    when = parse("every 10s")
    start = base = ms("2026-01-01T00:00:00")
    now = base + 36000                              # back 36 s later, with a minute's grace
    fired = []
    while True:
        step = plan(when, False, base, now, 60000)
        if step.action == "wait":
            break
        fired.append((step.action, (step.due - start) // 1000, step.missed))
        base = step.due
    assert fired == [("fire", 10, 0), ("fire", 20, 0), ("fire", 30, 0)]


def test_missed_cron_due_times_are_counted_and_bounded():
    when = parse("* * * * *")
    base = ms("2026-01-01T00:00:00")
    assert plan(when, False, base, base + 10 * MINUTE + 30000, 5000) == Plan("skip", base + 10 * MINUTE, 10)
    # A year away: the count stops at its bound, the walk is not a year of minutes.
    far = plan(when, True, base, base + 365 * 1440 * MINUTE + 30000, 5000)
    assert far.action == "fire" and far.due == base + 365 * 1440 * MINUTE and far.missed == 1000


def test_cron_without_croniter_says_what_to_install(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_croniter(name, *args, **kwargs):
        if name == "croniter":
            raise ImportError("no croniter")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_croniter)
    assert parse("every 10s").every_ms == 10000         # needs no croniter
    with pytest.raises(BadWhen, match="python3-croniter"):
        parse("*/5 * * * *")


def test_intervals_have_the_documented_floor():
    assert schedule_times.MIN_INTERVAL_SECONDS == 10
    assert parse("every 10s").every_ms == 10000


def test_a_cron_expression_that_never_comes_due_is_refused():
    with pytest.raises(BadWhen, match="never comes due"):
        parse("0 0 30 2 *")


def test_a_leap_day_schedule_missed_for_years_fires_its_latest_due_time():
    when = parse("0 0 29 2 *")
    base, now = ms("1990-01-01T00:00:00"), ms("2001-09-09T00:00:00")
    step = plan(when, True, base, now, 5000)
    assert step.action == "fire" and step.due == ms("2000-02-29T00:00:00") and step.missed == 2
