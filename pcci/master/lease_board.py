"""The lease row in MariaDB/Galera: claim it, renew it, give it up, read it. Blocking;
``Leadership`` runs it on a thread of its own, on a connection of its own, so a save
in progress never delays a renewal.

Why one row and an UPDATE is enough on Galera, which does not replicate locks
(GET_LOCK is per node): a claim is ``UPDATE ... WHERE expires < now`` in a
transaction. Two masters claiming at once through two nodes both see an expired row
and both update it; Galera certifies the two write sets in one total order and
aborts the second (error 1213): exactly one commits, and the loser reads the winner's
row next time. The same certification orders every write of the active master
against a claim, because each write bumps the same row (store_mariadb.FENCE).
"""

from .lease import LeaseView
from .mariadb_link import Session

EXPIRES_IN = "UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND"
CLAIM = ("UPDATE pcci_lease SET holder = %s, epoch = epoch + 1, expires = " + EXPIRES_IN +
         ", api_url = %s, worker_address = %s WHERE id = 1 AND expires < UTC_TIMESTAMP(6)")
RENEW = "UPDATE pcci_lease SET expires = " + EXPIRES_IN + " WHERE id = 1 AND holder = %s AND epoch = %s"
RELEASE = ("UPDATE pcci_lease SET expires = '1970-01-01 00:00:01' WHERE id = 1 AND holder = %s AND epoch = %s")
READ = ("SELECT holder, epoch, expires < UTC_TIMESTAMP(6), api_url, worker_address FROM pcci_lease "
        "WHERE id = 1")


class LeaseBoard:
    def __init__(self, connector):
        self.connector = connector
        self.session = Session(connector)
        self._run = self.session.transaction

    def claim(self, holder, seconds, api_url, worker_address):
        """The new epoch if this master now holds the lease; None if another one does."""
        def work(cursor):
            cursor.execute(CLAIM, (holder, int(seconds * 1e6), api_url, worker_address))
            if cursor.rowcount != 1:
                return None
            cursor.execute("SELECT epoch FROM pcci_lease WHERE id = 1")
            return cursor.fetchone()[0]
        try:
            return self._run(work)
        except Exception as exc:
            if self.connector.is_conflict(exc):
                return None         # another master's claim was certified first
            raise

    def renew(self, holder, epoch, seconds):
        """True if the lease is still this master's and now runs ``seconds`` from the database's now."""
        def work(cursor):
            cursor.execute(RENEW, (int(seconds * 1e6), holder, epoch))
            return cursor.rowcount == 1
        return self._run(work)

    def release(self, holder, epoch):
        """Let a standby take over at once (a clean stop), if the lease is still ours."""
        def work(cursor):
            cursor.execute(RELEASE, (holder, epoch))
        self._run(work)

    def read(self):
        def work(cursor):
            cursor.execute(READ)
            holder, epoch, expired, api_url, worker_address = cursor.fetchone()
            return LeaseView(holder or None, epoch, bool(expired), api_url, worker_address)
        return self._run(work)

    def close(self):
        self.session.close()
