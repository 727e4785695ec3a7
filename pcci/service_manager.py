"""Telling systemd how a service is doing: ready once it serves, a watchdog ping from the
event loop, stopping. This is sd_notify's protocol, one datagram to the socket named in
NOTIFY_SOCKET. Not Debian's python3-systemd: for one datagram, a C extension and its
dependency on every Pi is not worth it. Outside systemd (a shell, the quickstart, the
tests) NOTIFY_SOCKET is unset and nothing is sent.

The watchdog ping is a greenlet on the event loop, so a loop that hangs (a blocking
call, a busy loop) stops the pings and systemd restarts the service after WatchdogSec.
"""

import logging
import os
import socket

import gevent

log = logging.getLogger(__name__)


def notify(state, environ=None):
    """Send ``state`` ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..."); False when
    there is no one to tell or the socket cannot be reached (logged once by the caller's
    choice: a lost notification must never stop a service)."""
    path = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):            # an abstract socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(state.encode("utf-8", "replace"))
    except OSError as exc:
        log.warning("could not tell systemd %r: %s", state.split("\n")[0], exc)
        return False
    return True


def watchdog_interval(environ=None, pid=None):
    """Seconds between pings (half of WatchdogSec), or None when no watchdog is asked for
    this process."""
    environ = environ if environ is not None else os.environ
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    watched = environ.get("WATCHDOG_PID")
    if usec <= 0 or (watched and watched != str(pid if pid is not None else os.getpid())):
        return None
    return usec / 1e6 / 2


def ready(status, environ=None):
    """The service serves: say so, and keep the watchdog fed from now on."""
    notify("READY=1\nSTATUS=%s" % status, environ)
    interval = watchdog_interval(environ)
    if interval is None:
        return None
    return gevent.spawn(_feed_watchdog, interval, environ)


def stopping(environ=None):
    notify("STOPPING=1", environ)


def _feed_watchdog(interval, environ):
    while True:
        notify("WATCHDOG=1", environ)
        gevent.sleep(interval)
