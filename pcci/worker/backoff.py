"""Reconnect delays: full jitter within a ceiling that grows with the time already waited,
so restarted masters are not stampeded; and which of several masters to dial next.

The ceiling is twice the time this worker has waited since its link was last up (at
least ``base``, at most ``cap``), not ``base * 2 ** attempt``: in expectation the same
doubling (each wait is half the ceiling), but a worker whose first draws were short no
longer climbs to a ceiling far past the outage. 10,000 workers, a master back after 3 s:
the last came back 28 s after it with the attempt-count ceiling, 6 s with this one, at
about the same peak rate of dials (bench/backoff_spread.py, docs/performance.md).
"""

from .. import host_port

# The ceiling is this many times the time already waited: 2 keeps the old doubling in
# expectation; 1 halves the tail but doubles the peak rate of dials on a master just back.
CEILING_PER_SECOND_WAITED = 2.0


def reconnect_delay(waited, base, cap, random_fraction):
    """Seconds to wait before the next dial, having waited ``waited`` seconds since the link was
    last up; random_fraction is in [0, 1)."""
    ceiling = min(cap, max(base, CEILING_PER_SECOND_WAITED * waited))
    return max(base / 2, ceiling * random_fraction)


# While a standby answers (an election is under way), rounds wait at most this long: a
# new active master is due within a lease, and workers should find it soon after.
STANDBY_ROUND_CAP_SECONDS = 3.0


class MasterRotation:
    """Which of several masters to dial next, and after how long.

    A round tries the masters in turn, a moment apart. A ``not_leader`` answer names the
    active master: the next dial goes there, unless that master just failed to answer,
    in which case the standby that answered is tried again after the round (it is alive,
    and takes over when the lease runs out). Between rounds the delay grows with the time
    waited so far (``reconnect_delay``), capped lower while a standby answered. With one
    master this is the plain backoff."""

    def __init__(self, masters, base, cap):
        self.masters = list(masters)
        self.base = base
        self.cap = cap
        self.index = 0
        self.waited = 0.0           # seconds of delay handed out since the last long session
        self.tried = 0
        self.standby_seen = False
        self.failed = set()         # masters that did not answer in this round

    @property
    def current(self):
        return self.masters[self.index]

    def after(self, stable, random_fraction, not_leader=False, leader=None):
        """The link to ``current`` ended (``stable``: after a long session); returns the delay
        before dialing the new ``current``."""
        if stable:
            self.waited, self.tried = 0.0, 0
            self.standby_seen = False
            self.failed = set()
        self.tried += 1
        if not_leader:
            self.standby_seen = True
            hinted = self._index_of(leader)
            if hinted is None or hinted in self.failed or hinted == self.index:
                return self._end_round(random_fraction)     # stay with the live standby
            self.index = hinted
        else:
            self.failed.add(self.index)
            self.index = (self.index + 1) % len(self.masters)
        if self.tried < len(self.masters):
            return self._waiting(self.base * random_fraction / 2)
        return self._end_round(random_fraction)

    def _end_round(self, random_fraction):
        cap = min(self.cap, max(self.base, STANDBY_ROUND_CAP_SECONDS)) if self.standby_seen else self.cap
        delay = self._waiting(reconnect_delay(self.waited, self.base, cap, random_fraction))
        self.tried = 0
        self.standby_seen = False
        self.failed = set()
        return delay

    def _waiting(self, delay):
        self.waited += delay
        return delay

    def _index_of(self, address):
        if not address:
            return None
        try:
            wanted = host_port.parse(address, self.masters[self.index][1])
        except ValueError:
            return None
        return self.masters.index(wanted) if wanted in self.masters else None
