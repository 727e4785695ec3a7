"""Which of several masters sharing one MariaDB/Galera store is the active one.

A master starts as a standby and tries to claim the lease (``LeaseBoard``) a quarter
of a lease apart; once it holds it, it renews it as often and counts its own term
(``LeaseTerm``). When a renewal is refused (another master holds the lease) or the
term runs out without one (the database is unreachable or too slow), it steps down:
``on_lost`` runs, and the master restarts itself as a standby, dropping everything it
held in memory. What it committed is in the database; what it did not, the workers
still hold and send to the next active master.
"""

import logging

import gevent
from gevent.threadpool import ThreadPool

from ..clock import monotonic
from .lease import LeaseTerm
from .thread_calls import call_on

log = logging.getLogger(__name__)

# How long a clean stop waits for the database to take the released lease.
RELEASE_SECONDS = 2.0


class Leadership:
    def __init__(self, board, holder, lease_seconds, api_url, worker_address):
        self.board = board
        self.holder = holder
        self.term = LeaseTerm(lease_seconds)
        self.api_url = api_url
        self.worker_address = worker_address
        self.epoch = None
        self.known = None           # the lease as last read (lease.LeaseView), while standby
        self.role = "standby"
        self._thread = ThreadPool(1)
        self._last_problem = None

    def _call(self, timeout, method, *args):
        return call_on(self._thread, max(0.05, timeout), method, *args)

    # -- standby ------------------------------------------------------------------------
    def campaign(self, stopping):
        """Claim the lease until this master holds it (its epoch) or ``stopping`` is set (None)."""
        while not stopping.is_set():
            sent = monotonic()
            try:
                epoch = self._call(self.term.seconds, self.board.claim, self.holder, self.term.seconds,
                                   self.api_url, self.worker_address)
                if epoch is not None:
                    self.term.renewed(sent)
                    self.epoch, self.role = epoch, "active"
                    log.warning("this master (%s) is now the active one (lease epoch %d)", self.holder, epoch)
                    return epoch
                self.known = self._call(self.term.seconds, self.board.read)
                self._problem(None)
            except (Exception, gevent.Timeout) as exc:
                self.known = None
                self._problem("cannot reach the lease in the database: %s" % self._why(exc))
            stopping.wait(self.term.renew_every)
        return None

    def active_master(self):
        """The active master's (api_url, worker_address) as last read, or None (not known)."""
        known = self.known
        if known is None or known.expired or not known.holder or known.holder == self.holder:
            return None
        return known.api_url, known.worker_address

    # -- active -------------------------------------------------------------------------
    def keep(self, on_lost):
        """Renew until the lease is lost; then on_lost(why) (it does not return)."""
        while True:
            gevent.sleep(self.term.renew_every)
            sent = monotonic()
            try:
                still_ours = self._call(self.term.left(sent), self.board.renew, self.holder, self.epoch,
                                        self.term.seconds)
                if still_ours:
                    self.term.renewed(sent)
                    self._problem(None)
                else:
                    on_lost("another master holds the lease now (this one had epoch %d)" % self.epoch)
                    return
            except (Exception, gevent.Timeout) as exc:
                self._problem("could not renew the lease: %s" % self._why(exc))
            if not self.term.holds(monotonic()):
                on_lost("the lease ran out without a renewal (%s)" % self._last_problem)
                return

    def release(self):
        """A clean stop: let a standby take over now rather than after the lease time."""
        if self.epoch is None:
            return
        try:
            self._call(RELEASE_SECONDS, self.board.release, self.holder, self.epoch)
            log.info("lease released")
        except (Exception, gevent.Timeout) as exc:
            log.warning("could not release the lease (%s); a standby takes over when it runs out", self._why(exc))

    @staticmethod
    def _why(exc):
        if isinstance(exc, gevent.Timeout):
            return "the database did not answer in time"
        return str(exc) or type(exc).__name__

    def _problem(self, text):
        if text is not None and text != self._last_problem:
            log.warning("%s", text)
        elif text is None and self._last_problem is not None:
            log.info("the lease's database answers again")
        self._last_problem = text

    def close(self):
        self._thread.kill()
