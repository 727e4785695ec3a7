"""Retention: purge pools that ended more than pool_retention ago, and any over max_pools.

The decision (``purge_cutoff``) is pure; ``purge_loop`` runs it in the background in
small batches on the store's thread, so purging never blocks the API.
"""

import logging

import gevent

from ..clock import monotonic
from ..errors import StoreUnavailable

log = logging.getLogger(__name__)


def purge_cutoff(now_ms, retention_seconds):
    return now_ms - int(retention_seconds * 1000)


def purge_interval(retention_seconds):
    """Check often enough to keep pools near their retention, but at most once a minute."""
    return min(60.0, max(1.0, retention_seconds / 10.0))


def purge_once(store, retention_seconds, max_pools, clock):
    removed = 0
    while True:
        count = store.purge(purge_cutoff(clock(), retention_seconds), max_pools)
        removed += count
        if count == 0:
            return removed
        gevent.sleep(0)


def purge_loop(store, retention_seconds, max_pools, clock, after_purge=lambda: None):
    while True:
        gevent.sleep(purge_interval(retention_seconds))
        try:
            started = monotonic()
            removed = purge_once(store, retention_seconds, max_pools, clock)
            if removed:
                after_purge()
                log.info("purged %d pool(s) past retention in %.3fs", removed, monotonic() - started)
        except StoreUnavailable as exc:
            log.warning("purge skipped: %s; will try again", exc.message)
        except Exception:
            log.exception("purge failed; will try again")
