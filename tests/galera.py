"""A 3-node MariaDB Galera cluster in network namespaces, for tests/test_galera.py.

Each node is a real ``mariadbd`` with ``galera-4`` in a namespace of an nspawn.Testbed
(a bridge, no default route), with its own defaults file (so /etc/mysql is ignored)
and a data directory under /tmp owned by mysql (rsync state transfer drops to that
user). The first node bootstraps the cluster; the others join it. Failure detection
is tuned as docs/high-availability.md recommends (a dead node is declared gone within
about 2 s, not 6).
"""

import os
import shutil
import subprocess
import tempfile

import mariadb
from conftest import wait_until

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
PROVIDER_OPTIONS = (
    "evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT2S;"
    "evs.inactive_timeout=PT4S;gcache.size=64M")


def available():
    if not os.path.exists(PROVIDER):
        return "needs galera-4 (apt install galera-4)"
    if shutil.which("rsync") is None:
        return "needs rsync (Galera's state transfer)"
    return None


class GaleraNode:
    def __init__(self, cluster, name, netns, address):
        self.cluster, self.name, self.netns, self.address = cluster, name, netns, address
        self.base = os.path.join(cluster.base, name)
        self.datadir = os.path.join(self.base, "data")
        self.socket = os.path.join(self.base, "mysqld.sock")
        self.log_path = os.path.join(self.base, "error.log")
        self.process = None
        os.makedirs(self.datadir)
        shutil.chown(self.base, "mysql", "mysql")
        shutil.chown(self.datadir, "mysql", "mysql")
        self.defaults = os.path.join(self.base, "my.cnf")
        with open(self.defaults, "w") as handle:
            handle.write("\n".join([
                "[mysqld]", "user=mysql", "datadir=%s" % self.datadir, "socket=%s" % self.socket,
                "pid-file=%s" % os.path.join(self.base, "mysqld.pid"), "log-error=%s" % self.log_path,
                "port=3306", "bind-address=%s" % address, "skip-name-resolve", "binlog_format=ROW",
                "default_storage_engine=InnoDB", "innodb_autoinc_lock_mode=2", "innodb_buffer_pool_size=64M",
                "max_allowed_packet=64M", "wsrep_on=ON", "wsrep_provider=%s" % PROVIDER,
                "wsrep_cluster_name=pcci-test", "wsrep_cluster_address=gcomm://%s" % ",".join(cluster.addresses),
                "wsrep_node_address=%s" % address, "wsrep_node_name=%s" % name, "wsrep_sst_method=rsync",
                "wsrep_provider_options=\"%s\"" % PROVIDER_OPTIONS, ""]))
        subprocess.run(["mariadb-install-db", "--user=mysql", "--datadir=" + self.datadir,
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)

    def start(self, bootstrap=False):
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "/usr/sbin/mariadbd", "--defaults-file=" + self.defaults]
            + (["--wsrep-new-cluster"] if bootstrap else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.process.poll() is not None or self.status("wsrep_ready") == "ON",
                   timeout=90, interval=0.3, what="Galera node %s ready" % self.name)
        assert self.process.poll() is None, open(self.log_path, errors="replace").read()[-3000:]
        return self

    def sql(self, statement, check=True):
        return mariadb.sql_over(self.socket, statement, check)

    def status(self, variable):
        result = self.sql("SHOW STATUS LIKE '%s'" % variable, check=False)
        return result.stdout.split("\t")[-1].strip() if result.returncode == 0 and result.stdout else None

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self):
        mariadb.stop_server(self.process)


class GaleraCluster:
    def __init__(self, bed, numbers=(11, 12, 13)):
        import nspawn
        self.base = tempfile.mkdtemp(prefix="pcci-galera-")
        os.chmod(self.base, 0o755)
        self.addresses = ["%s.%d" % (nspawn.SUBNET, number) for number in numbers]
        self.nodes = []
        for index, number in enumerate(numbers):
            netns = bed._attach("db%d" % (index + 1), number)
            self.nodes.append(GaleraNode(self, "db%d" % (index + 1), netns, self.addresses[index]))

    def start(self):
        self.nodes[0].start(bootstrap=True)
        for node in self.nodes[1:]:
            node.start()
        wait_until(lambda: self.nodes[0].status("wsrep_cluster_size") == str(len(self.nodes)), timeout=60,
                   what="Galera cluster of %d" % len(self.nodes))
        return self

    def create_database(self, name, user, password):
        self.nodes[0].sql("CREATE DATABASE %s; CREATE USER '%s'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON %s.* TO "
                          "'%s'@'%%';" % (name, user, password, name, user))
        return "mariadb://%s@%s/%s" % (user, ",".join("%s:3306" % a for a in self.addresses), name)

    def close(self):
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)
