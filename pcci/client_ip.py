"""A client's address as the socket gives it, as an IP address (pure): the zone of a
link-local IPv6 address dropped, an IPv4-mapped IPv6 address read as the IPv4 one, so
caps and allow-lists count 127.0.0.1 and ::ffff:127.0.0.1 as one client."""

import ipaddress
from typing import Optional, Union

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def client_ip(address: str) -> Optional[Address]:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
