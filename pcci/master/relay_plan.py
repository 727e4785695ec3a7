"""Which workers of a streamed copy pull it from another worker (pure): a tree.

The master feeds the tree's roots over their links, as for any copy; every other worker
of the copy pulls the bytes from its parent, a worker that passes each piece on as soon
as it has written it (pcci.worker.relay_server). A worker can be a parent if it
advertised a relay endpoint (``relay_listen``; children dial it where
pcci.master.relay_address says) and named the ``relay`` feature; one that named only the
feature can be a leaf. Parents come first, in the pool's order, so the tree is as
shallow as the fan-out allows: with fan-out k, node i (i >= k) hangs under node
(i - k) // k. A worker that no parent can take is fed by the master, as before.

Below MIN_TREE_WORKERS (two workers that can relay, one of them a parent) the tree is a
chain, for a file of MIN_CHAIN_BYTES or more: the master feeds the parent, the other pulls
from it, so the master's link carries the file once instead of twice.

A tree is made over one dispatch: the workers a pool starts at its submit (all of them,
or a rolling batch's first turn). A later turn of a rolling batch starts one job per job
that ended, too few for a tree, and a job sent again after a reconnect goes on from where
its file ends: both get the direct stream. A copy asked for with ``"relay": false`` makes
no tree at all.
"""

from .. import protocol, relay_ticket
from . import relay_address

# A tree (the master feeding ``fanout`` roots) is made from this many workers that can
# relay; two make a chain (one root) instead, and one is fed by the master.
MIN_TREE_WORKERS = 3

# A chain's child dials its parent afresh (TCP, TLS handshake, ticket, slow start: 0.2-0.4 s
# at 50 ms between workers), while the master's link saves one copy of the file. Measured
# (docs/performance.md, "A chain for 2-worker copies"): at 1 Gbit/s and 50 ms, 1 MB and
# 10 MB came 0.1-0.5 s slower, 32 MB 0.2 s, 100 MB about the same; at 200 Mbit/s 32 MB and
# 100 MB took 0.55x. So a chain only for files whose one copy over a 1 Gbit/s link takes
# about that start-up or longer (32 MiB: 0.27 s).
MIN_CHAIN_BYTES = 32 * 1024 * 1024


def parents(order, can_serve, can_pull, fanout, chain=True):
    """{child: parent} for the workers in ``order`` (names), or {} when no tree is made;
    ``chain``: whether two of them may make a chain (a file large enough for one)."""
    if fanout < 1:
        return {}
    servers = [name for name in order if name in can_serve]
    pullers = [name for name in order if name in can_pull and name not in can_serve]
    nodes = servers + pullers
    if len(nodes) < MIN_TREE_WORKERS:
        return chained(servers, nodes) if chain else {}
    if len(nodes) < fanout + 1:
        return {}
    plan = {}
    for index in range(fanout, len(nodes)):
        parent = (index - fanout) // fanout
        if parent < len(servers):
            plan[nodes[index]] = servers[parent]
    return plan


def chained(servers, nodes):
    """{child: parent} for two workers when one can serve (the master feeds only it), else {}."""
    if len(nodes) != 2 or not servers:
        return {}
    root = servers[0]
    return {next(name for name in nodes if name != root): root}


def copy_fields(pool, dispatch, sessions, fanout, now_ms):
    """{worker: extra copy_begin fields} for a streamed copy's dispatch [(worker, job id)]:
    ``relayKey`` to a parent, ``relayFrom`` to a child; {} for any other pool."""
    if pool.copy is None or pool.copy.blob is None or pool.copy.fetch or not pool.copy.relay or fanout < 1:
        return {}
    can_serve, can_pull = set(), set()
    for worker, _ in dispatch:
        session = sessions(worker)
        if session is None or protocol.RELAY not in session.features:
            continue
        can_pull.add(worker)
        if session.relay is not None:
            can_serve.add(worker)
    # A worker reached at a loopback address (one on the master's own host, whose link comes
    # from 127.0.0.1) is that host only for children whose link is on loopback too: the others
    # would dial their own. It is then a leaf.
    if not all(relay_address.is_loopback(sessions(worker).address) for worker in can_pull):
        can_serve = {worker for worker in can_serve if not relay_address.is_loopback(sessions(worker).relay["host"])}
    plan = parents([worker for worker, _ in dispatch], can_serve, can_pull, fanout,
                   chain=pool.copy.size >= MIN_CHAIN_BYTES)
    if not plan:
        return {}
    job_of = dict(dispatch)
    keys = {parent: relay_ticket.new_key() for parent in set(plan.values())}
    expires = now_ms + relay_ticket.TICKET_SECONDS * 1000
    # An inner node is a child and a parent: it gets both. ``relayChildren`` are the
    # addresses its children dial from, which its listener keeps room for (pre-auth limits).
    fields = {parent: {"relayKey": key,
                       "relayChildren": sorted({address for child, of in plan.items() if of == parent
                                                for address in dials_from(sessions(child))})}
              for parent, key in keys.items()}
    for child, parent in plan.items():
        endpoint = sessions(parent).relay
        fields.setdefault(child, {})["relayFrom"] = {
            "host": endpoint["host"], "port": endpoint["port"], "fingerprint": endpoint["fingerprint"],
            "job": job_of[parent], "parent": parent, "expires": expires,
            "ticket": relay_ticket.make(keys[parent], job_of[parent], pool.copy.sha256, child, expires)}
    return fields


def dials_from(session):
    """The addresses a worker may dial a parent from: its link's, and the address it
    advertises for its own listener (the interface it has on the relays' network)."""
    addresses = {relay_address.plain(session.address)}
    if session.relay is not None:
        addresses.add(session.relay["host"])
    return addresses
