"""The one clock: wall-clock milliseconds for records, monotonic seconds for deadlines.

Pure code takes ``now`` as a parameter; only the I/O shells call these.
"""

import time


def wall_ms():
    """Milliseconds since the Unix epoch: what pools, jobs and workers record."""
    return int(time.time() * 1000)


def monotonic():
    """Seconds that never go backwards: for deadlines and durations, never for records."""
    return time.monotonic()


def iso_time(ms):
    """A record's milliseconds as the API shows them: ISO 8601 UTC, e.g. 2026-11-30T06:02:11.123Z."""
    global _last_second
    if ms is None:
        return None
    second, text = _last_second         # one read: another thread may replace it meanwhile
    if ms // 1000 != second:
        # A pool's jobs mostly share their seconds: GET /pool of 10,000 jobs shows 20,000
        # times, and the calendar is worked out once a second, not once a time.
        import datetime     # here: only a master shows times; a worker never loads it
        second = ms // 1000
        try:
            moment = datetime.datetime.fromtimestamp(second, tz=datetime.timezone.utc)
        except (ValueError, OverflowError, OSError):
            return None     # a time no calendar shows (an old record from an unchecked peer)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.")
        _last_second = (second, text)
    return text + "%03dZ" % (ms % 1000)


_last_second = (None, "")       # the second last shown, and its text up to the milliseconds
