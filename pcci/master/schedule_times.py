"""When a schedule is due, pure: "every 30s" and cron expressions to due times.

A due time is wall-clock milliseconds since the epoch (UTC). "every N<unit>" is due at
the multiples of its interval since the epoch, so every master computes the same due
times without sharing any state but the last one fired. A cron expression (five
fields, Debian's python3-croniter, imported only when one is parsed) is read in the
schedule's timezone (zoneinfo). An interval is at least the master's
schedule_min_interval (10 s by default, 1 s to 60 s; a cron step is a minute): a
schedule is for periodic work, not a loop, and max_schedules / that interval bounds the
pools per second schedules can make.
"""

import datetime
import re
import zoneinfo
from typing import NamedTuple, Optional

MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 366 * 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EVERY = re.compile(r"every ([1-9][0-9]{0,7})(s|m|h|d)")
CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?-]{1,100}")
MAX_WHEN_CHARS = 200


class BadWhen(ValueError):
    """The text says why, and what a good value looks like."""


class When(NamedTuple):
    text: str                       # as given
    every_ms: Optional[int]         # "every N<unit>" in ms, or None for a cron expression
    timezone: str                   # the cron expression's timezone (IANA name)


def every_seconds(text: str, min_seconds: float = MIN_INTERVAL_SECONDS) -> Optional[int]:
    """Seconds of an "every N<unit>" (s, m, h, d), or None when ``text`` is not one;
    BadWhen when it is one out of bounds."""
    match = EVERY.fullmatch(text.strip())
    if match is None:
        return None
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if not min_seconds <= seconds <= MAX_INTERVAL_SECONDS:
        raise BadWhen("'when' %r: an interval must be %gs to %dd (the master's schedule_min_interval)"
                      % (text, min_seconds, MAX_INTERVAL_SECONDS // 86400))
    return seconds


def timezone(name: str) -> zoneinfo.ZoneInfo:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not re.fullmatch(r"[A-Za-z0-9_+/-]+", name) \
            or ".." in name:
        raise BadWhen("'timezone' must be an IANA name such as \"UTC\" or \"Europe/Berlin\", got %r" % (name,))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):    # OSError: a directory of zones
        raise BadWhen("'timezone' %r is not a timezone this master knows (the tzdata package lists them)" % name)


def parse(text, tz_name: str = "UTC", min_seconds: float = MIN_INTERVAL_SECONDS) -> When:
    """A checked "when"; BadWhen says what is wrong with it."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_WHEN_CHARS:
        raise BadWhen("'when' must be \"every 30s\" (s, m, h or d) or a five-field cron expression such as "
                      "\"*/5 * * * *\"")
    timezone(tz_name)
    seconds = every_seconds(text, min_seconds)
    if seconds is not None:
        return When(text, seconds * 1000, tz_name)
    if text.strip().startswith("every"):
        raise BadWhen("'when' %r: write \"every N\" with a unit: s, m, h or d (\"every 30s\")" % text)
    fields = text.split()
    if len(fields) != 5 or not all(CRON_FIELD.fullmatch(field) for field in fields):
        raise BadWhen("'when' %r: a cron expression has five fields (minute hour day month weekday)" % text)
    croniter = _croniter()
    if not croniter.croniter.is_valid(" ".join(fields)):
        raise BadWhen("'when' %r is not a cron expression croniter can read" % text)
    when = When(" ".join(fields), None, tz_name)
    next_due(when, 0)           # one that never comes due ("0 0 30 2 *") is refused now
    return when


def next_due(when: When, after_ms: int) -> int:
    """The first due time strictly after ``after_ms``."""
    if when.every_ms is not None:
        return (after_ms // when.every_ms + 1) * when.every_ms
    due_ms = _cron_step(when, after_ms, forward=True)
    # croniter starts from the whole second; a start within the due second gives it back.
    return due_ms if due_ms > after_ms else next_due(when, after_ms + 1000 - after_ms % 1000)


def last_due_at_or_before(when: When, now_ms: int, since_ms: int) -> Optional[int]:
    """The latest due time in (since_ms, now_ms], or None. Bounded: a cron schedule
    walks back from ``now_ms`` (croniter's get_prev) rather than forward from ``since_ms``."""
    if when.every_ms is not None:
        due = now_ms // when.every_ms * when.every_ms
    else:
        try:
            due = _cron_step(when, now_ms + 1, forward=False)
        except BadWhen:
            # Some croniter releases give up walking back far (a 29 February); forward, bounded.
            due, step = None, next_due(when, since_ms)
            for _ in range(1000):
                if step > now_ms:
                    break
                due, step = step, next_due(when, step)
            return due
    return due if since_ms < due <= now_ms else None


def _cron_step(when: When, start_ms: int, forward: bool) -> int:
    """croniter's next (or previous) time from ``start_ms``, in ms; BadWhen when it finds none."""
    start = datetime.datetime.fromtimestamp(start_ms / 1000, zoneinfo.ZoneInfo(when.timezone))
    walk = _croniter().croniter(when.text, start)
    try:
        found = walk.get_next(datetime.datetime) if forward else walk.get_prev(datetime.datetime)
    except Exception as exc:        # croniter's own errors (CroniterBadDateError ...), by release
        raise BadWhen("'when' %r never comes due (%s)" % (when.text, exc))
    return int(found.timestamp() * 1000)


def _croniter():
    """The croniter module, imported when a cron schedule first needs it."""
    try:
        import croniter
    except ImportError:
        raise BadWhen("cron expressions need the Python library croniter on the master "
                      "(apt install python3-croniter); \"every 30s\" works without it")
    return croniter


class Plan(NamedTuple):
    """What to do about a schedule now: wait until ``due``, fire ``due``, or skip every due
    time up to ``due`` (missed: skip); ``missed`` counts the due times passed over."""
    action: str                     # "wait", "fire" or "skip"
    due: int
    missed: int = 0


def plan(when: When, run_missed: bool, base_ms: int, now_ms: int, grace_ms: int) -> Plan:
    """The next step of a schedule whose due times up to ``base_ms`` are settled (fired,
    skipped, or before it was enabled). A due time at most ``grace_ms`` late fires, late;
    one later than that is missed: the missed ones are skipped together, or, with
    ``run_missed`` (missed: run_once), the latest of them fires once for all. The due times
    still within the grace then fire one by one, at the next steps."""
    first = next_due(when, base_ms)
    if first > now_ms:
        return Plan("wait", first)
    if now_ms - first <= grace_ms:
        return Plan("fire", first)
    latest_missed = last_due_at_or_before(when, now_ms - grace_ms, base_ms) or first
    passed_over = 0 if latest_missed == first else _count_between(when, first, latest_missed)
    if run_missed:
        return Plan("fire", latest_missed, passed_over)
    return Plan("skip", latest_missed, passed_over + 1)


def _count_between(when: When, first: int, latest: int, limit: int = 1000) -> int:
    """How many due times from ``first`` up to ``latest`` (excluded); a count past ``limit`` is cut there."""
    if when.every_ms is not None:
        return min(limit, (latest - first) // when.every_ms)
    count, due = 0, first
    while due < latest and count < limit:
        count, due = count + 1, next_due(when, due)
    return count
