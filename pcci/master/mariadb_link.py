"""A connection to MariaDB (or one node of a Galera cluster) that moves to the next host
of ``store_url`` when the one it talks to stops answering.

PyMySQL is imported here, and this module only when ``store_url`` names MariaDB: a
master on SQLite needs neither.
"""

import logging
import ssl

log = logging.getLogger(__name__)

# Errors that mean "this connection (or this node) is gone", not "this statement is wrong":
# server gone or lost (2006, 2013), cannot connect (2003), Galera node not in the primary
# component (1047), commit failed on a node cutting loose (1180), connection killed (1927).
CONNECTION_LOST = {2003, 2006, 2013, 2055, 1047, 1180, 1927}
# Errors a retried transaction may not meet again: a Galera certification conflict or an
# InnoDB deadlock (1213), a lock wait timeout (1205).
CONFLICT = {1213, 1205}
CONNECT_SECONDS = 5
# A transaction left open by a master cut off from the network (its link down between the
# lease's fence and the commit) holds the lease row's lock on that node until the server
# drops the connection, which an idle TCP connection never prompts: the standby's claim
# would wait behind it. The server ends such a transaction after this long idle; a live
# master sends a transaction's statements back to back (measured in milliseconds).
IDLE_TRANSACTION_SECONDS = 5
# Unknown system variable: a server without idle_transaction_timeout (MariaDB < 10.3, MySQL).
UNKNOWN_VARIABLE = 1193
# Long enough for a Galera cluster to settle after a node dies (writes stall until it is
# declared gone), short enough that a dead node is left within a lease.
READ_SECONDS = 20


class Unreachable(Exception):
    """No host of store_url answered."""


def load_driver():
    import pymysql  # here: only a master on MariaDB needs it (python3-pymysql)
    return pymysql


class Connector:
    def __init__(self, target, password, tls_ca=None, read_seconds=READ_SECONDS):
        self.pymysql = load_driver()
        self.target = target
        self.password = password
        self.tls_ca = tls_ca
        self.read_seconds = read_seconds
        self.host_index = 0

    @property
    def where(self):
        host, port = self.target.hosts[self.host_index]
        return "%s:%d/%s" % (host, port, self.target.database)

    def connect(self):
        """A connection to the first host (from the last good one on) that answers; Unreachable if none."""
        problems = []
        for step in range(len(self.target.hosts)):
            index = (self.host_index + step) % len(self.target.hosts)
            host, port = self.target.hosts[index]
            try:
                connection = self.pymysql.connect(
                    host=host, port=port, user=self.target.user, password=self.password or "",
                    database=self.target.database, charset="utf8mb4", autocommit=False,
                    connect_timeout=CONNECT_SECONDS, read_timeout=self.read_seconds, write_timeout=self.read_seconds,
                    ssl=self._tls())
            except self.pymysql.err.MySQLError as exc:
                problems.append("%s:%d: %s" % (host, port, exc))
                continue
            if index != self.host_index:
                log.warning("pool store: now using %s:%d (%s)", host, port, "; ".join(problems) or "moved on")
            self.host_index = index
            self._end_idle_transactions(connection)
            self._read_your_writes(connection)
            return connection
        raise Unreachable("no database host answered: %s" % "; ".join(problems))

    def _tls(self):
        if not self.tls_ca:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        return context

    def _end_idle_transactions(self, connection):
        with connection.cursor() as cursor:
            try:
                cursor.execute("SET SESSION idle_transaction_timeout = %d" % IDLE_TRANSACTION_SECONDS)
            except self.pymysql.err.OperationalError as exc:
                if not exc.args or exc.args[0] != UNKNOWN_VARIABLE:
                    raise
                log.warning("pool store: %s has no idle_transaction_timeout (MariaDB 10.3 or later has it): a "
                            "master cut off mid-transaction may delay a takeover until the server drops it",
                            self.where)

    @staticmethod
    def _read_your_writes(connection):
        """On a Galera node, make every read wait until the node has applied what the cluster
        committed before it (wsrep_sync_wait=1): a master that just took over reads the
        pools the old one committed through another node."""
        with connection.cursor() as cursor:
            cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
            row = cursor.fetchone()
            if row is not None and str(row[1]).upper() == "ON":
                cursor.execute("SET SESSION wsrep_sync_wait = 1")
        connection.commit()

    def move_on(self):
        """The current host failed: start the next connect at the next one."""
        self.host_index = (self.host_index + 1) % len(self.target.hosts)

    def is_connection_lost(self, exc):
        return isinstance(exc, (self.pymysql.err.OperationalError, self.pymysql.err.InterfaceError)) and \
            (not exc.args or not isinstance(exc.args[0], int) or exc.args[0] in CONNECTION_LOST
             or exc.args[0] >= 2000)

    def is_conflict(self, exc):
        return isinstance(exc, self.pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in CONFLICT

    def data_errors(self):
        """Errors no retry will cure: the value itself is refused."""
        err = self.pymysql.err
        return (err.DataError, err.IntegrityError)


class Session:
    """One connection at a time: opened when first needed, and after a loss on the next
    host; each piece of work runs in a transaction of its own."""

    def __init__(self, connector):
        self.connector = connector
        self.db = None

    def transaction(self, work):
        """work(cursor), committed; its result. On an error the transaction is rolled back
        (a lost connection is dropped, and the next one goes to the next host) and the
        error raised."""
        try:
            if self.db is None:
                self.db = self.connector.connect()
            with self.db.cursor() as cursor:
                result = work(cursor)
            self.db.commit()
            return result
        except Exception as exc:
            if self.db is not None and self.connector.is_connection_lost(exc):
                self.close()
                self.connector.move_on()
            elif self.db is not None:
                try:
                    self.db.rollback()
                except Exception:
                    self.close()
            raise

    def close(self):
        if self.db is not None:
            try:
                self.db.close()
            except Exception:
                pass
            self.db = None


def read_password(path):
    if not path:
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()
