"""Closing a connection that a newcomer displaced (connection_limits.py chose it).

A slot's holder is the connection's socket until its greenlet runs, then the greenlet:
a socket is closed; a greenlet gets ``Displaced`` thrown in, which unwinds it like a
kill (its ``finally`` blocks close the link and release nothing twice) and is no error.
"""

import gevent


class Displaced(gevent.GreenletExit):
    """Thrown into a connection still in its handshake, or idle between requests."""


def close_slot(slot) -> None:
    if isinstance(slot.holder, gevent.Greenlet):
        slot.holder.kill(Displaced, block=False)
    elif slot.holder is not None:
        slot.holder.close()
