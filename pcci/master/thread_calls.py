"""A blocking call on a gevent thread pool, its exception raised in the calling greenlet.

gevent's pool prints a traceback for every exception a task raises, as if it were a
crash; a store that cannot write now or a database that does not answer is not one,
and says so in one log line of its own. The exception travels back as a value.
"""


def call_on(pool, timeout, method, *args, **kwargs):
    """method(*args, **kwargs) on ``pool``; waits at most ``timeout`` seconds (None: no limit),
    raising gevent.Timeout after that."""
    def guarded():
        try:
            return True, method(*args, **kwargs)
        except Exception as exc:
            return False, exc
    succeeded, value = pool.spawn(guarded).get(timeout=timeout)
    if not succeeded:
        raise value
    return value
