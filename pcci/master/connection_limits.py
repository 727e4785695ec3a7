"""Caps on connections that have not yet proved anything (pure).

An unauthenticated peer must not be able to exhaust the master: each address may hold
at most ``per_address`` such connections and all of them together at most ``total``;
one more is closed at once. A worker's connection stops counting once its handshake
succeeds, so a cluster of any size is unaffected; an API connection counts while it is
open (requests are short, and keep-alive clients hold one or two).
"""

import collections


class ConnectionLimits:
    def __init__(self, total, per_address):
        self.total, self.per_address = total, per_address
        self.by_address = collections.Counter()
        self.count = 0
        self.refused = 0

    def admit(self, address):
        """Count a new connection from ``address``; False (and not counted) when over a cap."""
        if self.count >= self.total or self.by_address[address] >= self.per_address:
            self.refused += 1
            return False
        self.count += 1
        self.by_address[address] += 1
        return True

    def release(self, address):
        self.count -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def why_refused(self, address):
        if self.count >= self.total:
            return "%d connections are waiting already (the limit)" % self.total
        return "%s holds %d connections already (the limit per address)" % (address, self.by_address[address])
