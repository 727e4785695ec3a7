"""Where the children of a relayed copy dial a worker's relay listener (pure).

By default: the address the worker's link comes from, at the port its hello names. A
worker behind NAT or with several interfaces may advertise another address
(``relay_advertise``), but an advertised address makes OTHER workers dial it, so a
compromised worker could aim their dials at any host and port from inside the cluster
(a port probe; the certificate pin keeps any bytes from going to the wrong host, not the
dial from being made). So the master takes an advertised address only if it is the
link's own address (then only the port changes) or lies inside its ``relay_networks``;
any other makes the worker serve no relays this session (it can still pull, as a leaf),
and the master logs one line saying so. Names are not accepted, only IP addresses: a
name would be resolved by each child when it dials, after this check. Nor, whatever
relay_networks says (0.0.0.0/0 takes everything), an address that names no parent but
each child's own host: the unspecified address (0.0.0.0 and :: dial the local host), or a
loopback address from a worker whose link is not itself on loopback.
"""

import ipaddress


def _address(text):
    """An ipaddress address, an IPv4-mapped IPv6 one (a dual-stack listener's) as IPv4; None if not one."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def plain(text):
    """An address as an IPv4 listener sees it and an IPv4-only host can dial it: a dual-stack
    master's ::ffff:a.b.c.d as a.b.c.d; any other text as it is."""
    try:
        mapped = getattr(ipaddress.ip_address(text), "ipv4_mapped", None)
    except ValueError:
        return text
    return str(mapped) if mapped is not None else text


def is_loopback(text):
    """True for a loopback address (127.0.0.0/8, ::1, ::ffff:127.x): it names a parent only
    for children on the same host."""
    address = _address(text)
    return address is not None and address.is_loopback


def accepted(endpoint, link_address, networks):
    """(the endpoint children dial, {host, port, fingerprint}, or None; why an advertised
    address was refused, or None) for a worker whose hello named ``endpoint``
    (protocol.relay_endpoint) and whose link comes from ``link_address``."""
    if endpoint is None:
        return None, None
    advertised = endpoint.get("host")
    dialed = {"host": plain(link_address), "port": endpoint["port"], "fingerprint": endpoint["fingerprint"]}
    if advertised is None:
        return dialed, None
    address = _address(advertised)
    if address is None:
        return None, "its advertised relay address %r is not an IP address" % (advertised[:60],)
    link = _address(link_address)
    if address.is_unspecified or (address.is_loopback and not (link is not None and link.is_loopback)):
        return None, ("its advertised relay address %s names each child's own host, not this worker "
                      "(its link comes from %s)" % (address, link_address))
    if address == link or any(address in network for network in networks):
        return dict(dialed, host=str(address)), None
    return None, ("its advertised relay address %s is neither the address its link comes from (%s) nor inside "
                  "the master's relay_networks (%s)" % (address, link_address, _described(networks)))


# How many of relay_networks a refusal names: the line is written at each of the worker's
# reconnects, so its length must not grow with the admin's list.
NAMED_NETWORKS = 4


def _described(networks):
    named = ", ".join(str(network) for network in networks[:NAMED_NETWORKS]) or "none"
    return named + (" and %d more" % (len(networks) - NAMED_NETWORKS) if len(networks) > NAMED_NETWORKS else "")
