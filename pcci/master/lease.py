"""The master lease's timing, pure: how long a master may act as the active one after
its last successful renewal, and when to renew.

The database sets the lease's expiry to *its* clock at the renewal plus the lease
time; that clock reads at least the moment the renewal was sent. The master counts
its own term from the moment it *sent* the renewal (a monotonic clock), minus a
margin for the database nodes' clocks disagreeing. So its term ends before any other
master can see the lease expired, and it steps down first (docs/high-availability.md).
"""

import collections

# At most this much of a lease is given up for clock differences between database nodes.
MAX_MARGIN_SECONDS = 1.0
RENEWALS_PER_LEASE = 4

LeaseView = collections.namedtuple("LeaseView", "holder epoch expired api_url worker_address")


class LeaseTerm:
    def __init__(self, seconds):
        self.seconds = seconds
        self.margin = min(MAX_MARGIN_SECONDS, seconds / 5)
        self.valid_until = None

    @property
    def length(self):
        """How long the master acts on one renewal: the lease less the margin."""
        return self.seconds - self.margin

    @property
    def renew_every(self):
        return self.seconds / RENEWALS_PER_LEASE

    def renewed(self, sent_at):
        """A renewal sent at ``sent_at`` (monotonic) committed."""
        self.valid_until = sent_at + self.length

    def holds(self, now):
        return self.valid_until is not None and now < self.valid_until

    def left(self, now):
        return 0.0 if self.valid_until is None else max(0.0, self.valid_until - now)
