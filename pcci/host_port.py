"""'host', 'host:port' or '[v6]:port', as master_hosts and store_url write them."""

import re


def parse(text, default_port):
    """(host, port); ValueError saying what is wrong."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("%r is not HOST or HOST:PORT" % (text,))
        port = rest[1:]
        if rest and not port:
            raise ValueError("%r has a ':' but no port" % (text,))
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port:
            raise ValueError("%r has a ':' but no port" % (text,))
    else:
        host, port = text, ""
    if not host or " " in host or (port and not (re.fullmatch(r"[0-9]{1,5}", port) and 0 < int(port) < 65536)):
        raise ValueError("%r is not HOST or HOST:PORT (a port from 1 to 65535)" % (text,))
    return host, int(port) if port else default_port
