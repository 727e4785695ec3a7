"""A throwaway MariaDB server for tests: own datadir, own port on 127.0.0.1, stopped afterwards."""

import contextlib
import os
import shutil
import subprocess
import time

from conftest import free_port, stop_process, wait_until


def available():
    """Why a MariaDB server cannot be started here, or None."""
    for tool in ("mariadbd", "mariadb-install-db", "mariadb"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            return "needs the MariaDB server (apt install mariadb-server)"
    if os.geteuid() != 0:
        return "starts mariadbd as the mysql user: needs root"
    return None


def sql_over(socket, statement, check=True):
    """Run SQL as root through a server's unix socket (the mariadb client; tab-separated, no headers)."""
    return subprocess.run(["mariadb", "--socket=" + socket, "-uroot", "-N", "-B", "-e", statement],
                          capture_output=True, text=True, check=check, timeout=30)


def stop_server(process):
    """SIGTERM (mariadbd shuts down cleanly), SIGKILL after a minute."""
    stop_process(process, grace=60)


class MariaDB:
    def __init__(self, base):
        self.base = base
        self.datadir = os.path.join(base, "data")
        self.socket = os.path.join(base, "mysqld.sock")
        self.port = free_port()
        self.process = None
        os.makedirs(self.datadir)
        shutil.chown(base, "mysql", "mysql")
        shutil.chown(self.datadir, "mysql", "mysql")
        subprocess.run(["mariadb-install-db", "--user=mysql", "--datadir=" + self.datadir,
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)

    def start(self):
        log = open(os.path.join(self.base, "mariadb.log"), "ab")
        self.process = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", "--user=mysql", "--datadir=" + self.datadir,
             "--socket=" + self.socket, "--port=%d" % self.port, "--bind-address=127.0.0.1",
             "--pid-file=" + os.path.join(self.base, "mariadb.pid"), "--skip-name-resolve"],
            stdout=log, stderr=log)
        log.close()
        wait_until(lambda: self.sql("SELECT 1", check=False).returncode == 0, timeout=60, what="MariaDB up")
        return self

    def sql(self, statement, check=True):
        return sql_over(self.socket, statement, check)

    def stop(self):
        stop_server(self.process)
        self.process = None
        time.sleep(0.1)


def start_throwaway():
    """A started MariaDB under /tmp (pytest's tmp_path is 0700 root, and mariadbd runs as
    mysql): (server, base directory to remove after stop)."""
    import tempfile
    base = tempfile.mkdtemp(prefix="pcci-mariadb-")
    os.chmod(base, 0o755)
    return MariaDB(os.path.join(base, "server")).start(), base


@contextlib.contextmanager
def throwaway():
    """A started MariaDB (``start_throwaway``), stopped and removed after the block; the
    test is skipped where none can start."""
    import pytest
    reason = available()
    if reason:
        pytest.skip(reason)
    server, base = start_throwaway()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(server, name, password="secret"):
    """An empty database and a user 'pcci' with all rights on it: its store_url."""
    server.sql("CREATE DATABASE %s; CREATE USER IF NOT EXISTS 'pcci'@'127.0.0.1' IDENTIFIED BY '%s'; "
               "GRANT ALL ON %s.* TO 'pcci'@'127.0.0.1';" % (name, password, name))
    return "mariadb://pcci@127.0.0.1:%d/%s" % (server.port, name)
