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
    if ms is None:
        return None
    import datetime     # here: only a master shows times; a worker never loads it
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None     # a time no calendar shows (an old record from an unchecked peer)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)
