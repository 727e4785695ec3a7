"""Caps on connections that have not yet proved anything (pure).

Shared by the master's worker port and API port and a worker's relay listener
(pcci.worker.relay_server), so it lives beside neither side's package. An
unauthenticated peer must not be able to exhaust the process, and no flood of such
peers may lock out a client it trusts. Each open connection holds a ``Slot``:

- per address: at most ``per_address``; one more closes that address's oldest idle slot
  (an address competes only with itself);
- per prefix (a /24 for IPv4, a /64 for IPv6: what one host or one small site can hold):
  at most ``per_prefix``; one more closes the oldest idle slot of the prefix's busiest
  address, if the newcomer's address holds fewer; else the newcomer is refused;
- in all: at most ``total``. One more closes the oldest idle slot of the busiest address
  of the busiest prefix -- if the newcomer's own prefix holds no more than that one
  would after the swap (or, within one prefix, its address holds no more); else the
  newcomer is refused. So idle connections cannot hold a slot against a newcomer from a
  less crowded network: an attacker must hold more prefixes than the cap has slots, or
  open connections faster than a real client finishes its handshake, to keep one out.
- ``reserve`` more slots only for ``known`` addresses (the worker port: those its known
  workers last came from), which strangers never fill. A known address is not held to
  the per-prefix cap (a rack of Pis shares a /24), and its slots give way only to newer
  ones from the same address.

"Idle" is the caller's word: on the worker port every connection still in its
handshake; on the API port one waiting for a request, not one being answered (a long
``?wait=`` is never closed for a newcomer). A connection that authenticates leaves (it
is released). ``admit`` returns the slot to close, if any; the caller closes it.
"""

import collections
import ipaddress
from typing import Dict, Optional

from .client_ip import client_ip


def address_prefix(address: str) -> str:
    """The network an address is counted in: its /24 (IPv4, also IPv4-mapped IPv6) or /64."""
    ip = client_ip(address)
    if ip is None:
        return address
    return str(ipaddress.ip_network((ip, 24 if ip.version == 4 else 64), strict=False))


class Slot:
    """One admitted connection; ``holder`` is the caller's (what to close if it is evicted)."""

    __slots__ = ("address", "prefix", "idle", "known", "holder", "evicted")

    def __init__(self, address, prefix, known):
        self.address, self.prefix, self.known = address, prefix, known
        self.idle = True
        self.holder = None
        self.evicted = False


class Admission:
    """``slot`` is None when refused (``reason`` says why); ``evict`` is a slot to close now."""

    __slots__ = ("slot", "evict", "reason")

    def __init__(self, slot, evict=None, reason=""):
        self.slot, self.evict, self.reason = slot, evict, reason


class ConnectionLimits:
    def __init__(self, total: int, per_address: int, per_prefix: Optional[int] = None, reserve: int = 0):
        self.total, self.per_address = total, per_address
        self.per_prefix = per_prefix if per_prefix is not None else total
        self.reserve = reserve
        self.by_address: Dict[str, Dict[Slot, None]] = {}     # insertion order: oldest first
        self.idle_at = collections.Counter()                   # address -> idle slots
        self.by_prefix = collections.Counter()                 # prefix -> slots
        self.addresses_in = collections.defaultdict(set)       # prefix -> its addresses with slots
        self.idle_in = collections.Counter()                   # prefix -> idle slots
        self.count = 0
        self.refused = 0
        self.evicted = 0

    def admit(self, address: str, known: bool = False) -> Admission:
        prefix = address_prefix(address)
        at_address = len(self.by_address.get(address, ()))
        evict = None
        if at_address >= self.per_address:
            evict = self._oldest_idle(address, known_too=True)
            if evict is None:
                return self._refuse("%s holds %d connections already (the limit per address)" % (address, at_address))
        elif self.by_prefix[prefix] >= self.per_prefix and not known:
            evict = self._busiest_in(prefix, at_address)
            if evict is None:
                return self._refuse("%s holds %d connections already (the limit per network)"
                                    % (prefix, self.by_prefix[prefix]))
        elif self.count >= self.total + (self.reserve if known else 0):
            evict = self._busiest(prefix, at_address, known)
            if evict is None:
                return self._refuse("%d connections are open already (the limit)" % self.count)
        if evict is not None:
            self.release(evict)
            evict.evicted = True
            self.evicted += 1
        slot = Slot(address, prefix, known)
        self.by_address.setdefault(address, {})[slot] = None
        self.addresses_in[prefix].add(address)
        self.by_prefix[prefix] += 1
        if not known:
            self.idle_at[address] += 1
            self.idle_in[prefix] += 1
        self.count += 1
        return Admission(slot, evict)

    def set_idle(self, slot: Slot, idle: bool) -> None:
        """Whether a newcomer may close this connection (the API: between requests)."""
        if slot.idle == idle or slot.evicted or slot not in self.by_address.get(slot.address, ()):
            return
        slot.idle = idle
        if slot.known:
            return
        step = 1 if idle else -1
        self.idle_at[slot.address] += step
        self.idle_in[slot.prefix] += step

    def release(self, slot: Slot) -> None:
        """The connection closed or authenticated; a second call, or one for an evicted slot, does nothing."""
        slots = self.by_address.get(slot.address)
        if slots is None or slot not in slots:
            return
        del slots[slot]
        if slot.idle and not slot.known:
            self.idle_at[slot.address] -= 1
            self.idle_in[slot.prefix] -= 1
        self.by_prefix[slot.prefix] -= 1
        self.count -= 1
        if not slots:
            del self.by_address[slot.address]
            del self.idle_at[slot.address]
            self.addresses_in[slot.prefix].discard(slot.address)
        if self.by_prefix[slot.prefix] <= 0:
            del self.by_prefix[slot.prefix], self.idle_in[slot.prefix], self.addresses_in[slot.prefix]

    # -- choosing whom a newcomer displaces ----------------------------------------------
    def _refuse(self, reason):
        self.refused += 1
        return Admission(None, reason=reason)

    def _oldest_idle(self, address, known_too=False):
        """Known slots give way only to their own address (idle_at counts only strangers')."""
        if not known_too and self.idle_at[address] <= 0:
            return None
        return next((slot for slot in self.by_address[address] if slot.idle and (known_too or not slot.known)),
                    None)

    def _busiest_in(self, prefix, newcomer_at_address):
        """The oldest idle slot of the prefix's busiest address, if it holds more than the newcomer would."""
        candidates = [a for a in self.addresses_in.get(prefix, ()) if self.idle_at[a] > 0]
        if not candidates:
            return None
        address = max(candidates, key=lambda a: len(self.by_address[a]))
        if newcomer_at_address + 1 > len(self.by_address[address]):
            return None
        return self._oldest_idle(address)

    def _busiest(self, prefix, newcomer_at_address, known):
        """Over the total: the busiest prefix gives way, unless the newcomer's would then be
        busier (a known newcomer, past its reserve, always displaces a stranger)."""
        candidates = [p for p in self.by_prefix if self.idle_in[p] > 0]
        if not candidates:
            return None
        busiest = max(candidates, key=lambda p: self.by_prefix[p])
        if known:
            return self._busiest_in(busiest, -1)
        if busiest == prefix:
            return self._busiest_in(prefix, newcomer_at_address)
        if self.by_prefix[prefix] + 1 > self.by_prefix[busiest]:
            return None
        return self._busiest_in(busiest, -1)
