"""Bottle's per-request state, made per greenlet.

Bottle keeps the current request and response in ``threading.local`` objects that it
creates when it is imported. The master serves many requests at once on one thread,
one greenlet each, so those objects must be greenlet-local, or one request could
answer with another's status and body. ``import_bottle`` imports bottle with
``threading.local`` briefly replaced by gevent's, then puts it back: nothing else in
the process is patched. It must run before anything else imports bottle, and says so
loudly if something did.
"""

import sys
import threading

import gevent.local

_safe_bottle = None


def import_bottle():
    """Bottle, imported with greenlet-local request state; RuntimeError if it is too late."""
    global _safe_bottle
    if _safe_bottle is not None:
        return _safe_bottle
    if "bottle" in sys.modules:
        raise RuntimeError("bottle was imported before pcci.master.greenlet_locals.import_bottle(): its request "
                           "and response would be shared by concurrent requests")
    original = threading.local
    threading.local = gevent.local.local
    try:
        import bottle
    finally:
        threading.local = original
    _safe_bottle = bottle
    return bottle
