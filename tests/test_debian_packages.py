"""The .debs, built with dpkg-buildpackage, installed on booted Debian systems (nspawn).

Each suite (bookworm, and trixie as current Raspberry Pi OS is based on it) gets a
master host and a worker host, each a systemd-nspawn container in its own network
namespace; curl runs in a controller namespace with no default route. The tests in
this module run in order, each building on the state the previous ones left.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import wait_until
import nspawn

SKIP_REASON = nspawn.nspawn_supported()
pytestmark = [pytest.mark.skipif(SKIP_REASON is not None, reason="booted-container tests: %s" % SKIP_REASON),
              pytest.mark.container, pytest.mark.root, pytest.mark.slow]

UPGRADE_VERSION = "0.1.0+test2"


@pytest.fixture(scope="session")
def debs(tmp_path_factory):
    base = tmp_path_factory.mktemp("debs")
    return nspawn.build_debs(str(base / "current")), nspawn.build_debs(str(base / "upgrade"), UPGRADE_VERSION)


def test_debs_build_and_lintian_finds_no_errors_or_warnings(debs):
    current, _ = debs
    names = sorted(n for n in os.listdir(current) if n.endswith(".deb"))
    assert names == ["pcci-master_0.1.0_all.deb", "pcci-worker_0.1.0_all.deb", "python3-pcci_0.1.0_all.deb"]
    changes = [os.path.join(current, n) for n in os.listdir(current) if n.endswith(".changes")]
    # --pedantic: its tags are shown too; the run fails on any error or warning.
    result = subprocess.run(["lintian", "--pedantic", "--fail-on", "error,warning", *changes], capture_output=True,
                            text=True, timeout=600)
    problems = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert problems == [] and result.returncode == 0, result.stdout + result.stderr
    # The user's documentation travels with the library package (performance.md is the
    # developers' and stays in the source).
    listing = subprocess.run(["dpkg-deb", "-c", os.path.join(current, "python3-pcci_0.1.0_all.deb")],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    for name in ("README.md", "api.md", "client.md", "configuration.md", "high-availability.md", "protocol.md",
                 "reliability.md", "scaling.md", "security.md"):
        assert re.search(r"/usr/share/doc/python3-pcci/%s(\.gz)?$" % re.escape(name), listing, re.M), name


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def bed(request, debs, tmp_path_factory):
    current, upgrade = debs
    image = nspawn.golden_image(request.param)
    testbed = nspawn.Testbed(str(tmp_path_factory.mktemp("bed-%s" % request.param)))
    try:
        binds = [(current, "/debs"), (upgrade, "/debs-upgrade")]
        testbed.master = testbed.host("master", image, binds)
        testbed.worker = testbed.host("pi1", image, binds)
        testbed.master.sh("dpkg -i /debs/python3-pcci_*.deb /debs/pcci-master_*.deb")
        testbed.worker.sh("dpkg -i /debs/python3-pcci_*.deb /debs/pcci-worker_*.deb")
        testbed.suite = request.param
        testbed.pools = {}
        yield testbed
    finally:
        testbed.close()


def is_active(host, unit):
    return host.sh("systemctl is-active %s" % unit, check=False).stdout.strip()


def token_of(bed):
    lines = bed.master.sh("cat /etc/pcci/api-tokens").stdout.splitlines()
    return [line for line in lines if line and not line.startswith("#")][0].split()[0]


def api(bed, method, path, body=None):
    """curl from the controller namespace, as a user on another machine would: over https,
    with the certificate the master made copied from it, as a user would copy it."""
    cacert = os.path.join(bed.directory, "master-api.crt")
    if not os.path.exists(cacert):
        pem = bed.master.sh("cat /var/lib/pcci-master/tls/api.crt", check=False).stdout
        if "BEGIN CERTIFICATE" not in pem:
            return None, None
        with open(cacert, "w") as handle:
            handle.write(pem)
    return bed.api(bed.master.address, method, path, token_of(bed), body, cacert=cacert)


def test_installed_units_pass_systemd_analyze_verify(bed):
    for host, unit in ((bed.master, "pcci-master"), (bed.worker, "pcci-worker")):
        # --man=no: the minimal image has no man command; the page itself is checked below.
        result = host.sh("systemd-analyze verify --man=no /lib/systemd/system/%s.service" % unit, check=False)
        assert result.returncode == 0 and "pcci" not in result.stderr, result.stderr
        host.sh("test -f /usr/share/man/man1/%s.1.gz" % unit)
        host.sh("test -f /usr/share/man/man1/pcci.1.gz && bash -n /usr/share/bash-completion/completions/pcci")


def test_the_masters_unit_stays_locked_down(bed):
    """systemd-analyze security scores the sandbox from 0 (locked down) to 10: 2.0 at most."""
    wait_until(lambda: is_active(bed.master, "pcci-master") == "active", timeout=30, what="master active")
    result = bed.master.sh("systemd-analyze security --no-pager pcci-master.service", check=False)
    score = re.search(r"Overall exposure level for pcci-master.service: (\d+\.\d+)", result.stdout)
    assert score and float(score.group(1)) <= 2.0, result.stdout[-3000:]


def test_master_comes_up_active_with_a_generated_token_on_loopback_only(bed):
    wait_until(lambda: is_active(bed.master, "pcci-master") == "active", timeout=30, what="master active")
    listing = bed.master.sh("stat -c '%a %U %G' /etc/pcci/api-tokens /etc/pcci/cluster.key").stdout.split("\n")
    assert listing[0] == "640 root _pcci-master" and listing[1] == "640 root _pcci"
    assert re.fullmatch(r"[0-9a-f]{64}", token_of(bed))
    health = wait_until(lambda: bed.master.sh("curl -sf http://127.0.0.1:8080/health", check=False).stdout,
                        what="/health inside the master")
    assert json.loads(health)["status"] == "ok"
    assert bed.client("curl", "-sS", "--max-time", "5", "http://%s:8080/health" % bed.master.address).returncode != 0
    assert bed.master.sh("ps -o user= -C pcci-master").stdout.strip() == "_pcci-master"


def test_a_hung_master_is_restarted_by_its_watchdog(bed):
    """Type=notify with WatchdogSec: a master whose event loop stops is killed and started
    again (here with a 3 s watchdog in a drop-in; the unit's own is 30 s)."""
    master = bed.master

    def show(prop):
        return master.sh("systemctl show -p %s --value pcci-master" % prop).stdout.strip()
    assert (show("Type"), show("WatchdogUSec")) == ("notify", "30s")
    master.sh("mkdir -p /etc/systemd/system/pcci-master.service.d && "
              "printf '[Service]\\nWatchdogSec=3s\\n' > /etc/systemd/system/pcci-master.service.d/test-watchdog.conf "
              "&& systemctl daemon-reload && systemctl restart pcci-master")
    try:
        wait_until(lambda: is_active(master, "pcci-master") == "active", timeout=30, what="master active")
        hung, restarts = show("MainPID"), int(show("NRestarts"))
        master.sh("kill -STOP %s" % hung)
        wait_until(lambda: show("MainPID") not in ("0", hung) and is_active(master, "pcci-master") == "active",
                   timeout=40, what="the master restarted by its watchdog")
        assert int(show("NRestarts")) == restarts + 1
        assert "Watchdog timeout" in master.sh("journalctl -u pcci-master --no-pager", check=False).stdout
    finally:
        # reset-failed: the restarts here count against the unit's start limit (5 in 10 s),
        # which the tests after this one would otherwise run into.
        master.sh("rm -f /etc/systemd/system/pcci-master.service.d/test-watchdog.conf && systemctl daemon-reload "
                  "&& systemctl reset-failed pcci-master && systemctl restart pcci-master")
    wait_until(lambda: is_active(master, "pcci-master") == "active", timeout=30, what="master active again")


def test_unconfigured_worker_waits_for_its_admin_without_crash_looping(bed):
    wait_until(lambda: "not configured yet" in bed.worker.sh("journalctl -u pcci-worker --no-pager",
                                                             check=False).stdout, timeout=30, what="log line")
    # The line is logged just before the process exits: give it a moment to be gone.
    wait_until(lambda: is_active(bed.worker, "pcci-worker") == "inactive", timeout=15, what="worker inactive")
    assert bed.worker.sh("systemctl show -p NRestarts --value pcci-worker").stdout.strip() == "0"
    # Filed at its priority: a warning, not an info line, with no "<4>" left in the text.
    warnings = bed.worker.sh("journalctl -u pcci-worker -p warning -o cat --no-pager").stdout
    assert "WARNING pcci.worker.service: not configured yet" in warnings and "<4>" not in warnings
    assert "not configured yet" not in bed.worker.sh("journalctl -u pcci-worker -p err -o cat --no-pager").stdout


def test_configured_worker_registers_and_runs_a_job_sent_by_curl(bed):
    key = bed.master.sh("cat /etc/pcci/cluster.key").stdout
    bed.worker.sh("umask 027; cat > /etc/pcci/cluster.key; chown root:_pcci /etc/pcci/cluster.key", stdin=key)
    bed.worker.sh("sed -i 's/^master_host: .*/master_host: %s/' /etc/pcci/worker.yaml && "
                  "systemctl restart pcci-worker" % bed.master.address)
    bed.master.sh("sed -i 's/^api_host: .*/api_host: 0.0.0.0/' /etc/pcci/master.yaml && systemctl restart pcci-master")
    wait_until(lambda: api(bed, "GET", "/workers")[0] == 200 and
               [w for w in api(bed, "GET", "/workers")[1]["workers"] if w["name"] == "pi1" and w["online"]],
               timeout=40, what="pi1 online")
    status, submitted = api(bed, "POST", "/job", {"cmd": "hostname; id -un", "workers": ["pi1"]})
    assert status == 202
    status, pool = api(bed, "GET", "/pool/%s?wait=30" % submitted["id"])
    job = pool["jobs"]["pi1"]
    assert (job["state"], job["stdout"]) == ("succeeded", "pi1\n_pcci-worker\n")
    bed.pools["first"] = pool


def test_the_installed_master_serves_its_dashboard_and_metrics(bed):
    """The dashboard's files came with the package, and /metrics with its dependency."""
    cacert = os.path.join(bed.directory, "master-api.crt")
    base = "https://%s:8080" % bed.master.address
    page = bed.client("curl", "-sS", "--fail", "--cacert", cacert, "-D", "-", base + "/").stdout
    assert '<script type="module" src="/ui/app.js"></script>' in page
    assert "content-security-policy: default-src 'none'; script-src 'self'" in page.lower()
    script = bed.client("curl", "-sS", "--fail", "--cacert", cacert, base + "/ui/workers.js").stdout
    assert "export async function showWorkers" in script
    metrics = bed.client("curl", "-sS", "--fail", "--cacert", cacert, "-H", "Authorization: Bearer " + token_of(bed),
                         base + "/metrics").stdout
    assert 'pcci_worker_online{node="pi1"} 1.0' in metrics


def test_master_restart_keeps_history(bed):
    bed.master.sh("systemctl restart pcci-master")
    wait_until(lambda: api(bed, "GET", "/health")[0] == 200, timeout=30, what="master back")
    status, pool = api(bed, "GET", "/pool/%s" % bed.pools["first"]["id"])
    assert status == 200 and pool == bed.pools["first"]


def test_stopping_the_worker_kills_the_jobs_process_group_and_the_master_shows_it(bed):
    wait_until(lambda: [w for w in api(bed, "GET", "/workers")[1]["workers"] if w["online"]], timeout=40,
               what="pi1 online again")
    status, submitted = api(bed, "POST", "/job", {"cmd": "sh -c 'sleep 300' & sleep 300", "workers": ["pi1"]})
    wait_until(lambda: bed.worker.sh("pgrep -c -x sleep", check=False).stdout.strip() == "2", what="job running")
    bed.worker.sh("systemctl stop pcci-worker", timeout=60)
    assert bed.worker.sh("pgrep -x sleep", check=False).stdout.strip() == ""
    status, pool = api(bed, "GET", "/pool/%s?wait=30" % submitted["id"])
    assert pool["jobs"]["pi1"]["state"] == "killed"
    bed.worker.sh("systemctl start pcci-worker")


def test_under_systemd_each_job_has_a_cgroup_that_kill_and_timeout_empty(bed):
    wait_until(lambda: [w for w in api(bed, "GET", "/workers")[1]["workers"] if w["online"]], timeout=40,
               what="pi1 online again")
    journal = bed.worker.sh("journalctl -u pcci-worker -b --no-pager").stdout
    # The unit's own cgroup (v2 sits at /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
    base = re.findall(r"each job runs in its own cgroup under (\S+)", journal)[-1]
    assert base.endswith("/system.slice/pcci-worker.service")
    daemon = "setsid sh -c 'exec sleep 1002' >/dev/null 2>&1 & sleep 300"
    status, submitted = api(bed, "POST", "/job", {"cmd": daemon, "workers": ["pi1"]})
    cgroup = "%s/pcci-job-%s-*" % (base, submitted["id"])
    wait_until(lambda: bed.worker.sh("cat %s/cgroup.procs" % cgroup, check=False).stdout.count("\n") >= 3,
               what="the job and its daemon in the job's cgroup")
    assert api(bed, "PUT", "/kill/%s" % submitted["id"])[1]["workers"] == {"pi1": "signalled"}
    status, pool = api(bed, "GET", "/pool/%s?wait=30" % submitted["id"])
    assert pool["jobs"]["pi1"]["state"] == "killed"
    assert bed.worker.sh("pgrep -x sleep", check=False).stdout.strip() == ""
    assert bed.worker.sh("ls -d %s" % cgroup, check=False).returncode != 0       # removed once empty
    status, submitted = api(bed, "POST", "/job", {"cmd": "sleep 1011 & echo started", "workers": ["pi1"],
                                                  "timeout": 2})
    status, pool = api(bed, "GET", "/pool/%s?wait=30" % submitted["id"])
    assert (pool["jobs"]["pi1"]["state"], pool["jobs"]["pi1"]["stdout"]) == ("timed_out", "started\n")
    assert bed.worker.sh("pgrep -x sleep", check=False).stdout.strip() == ""


# The documented step that lets a worker run jobs as root (docs/security.md, README).
ROOT_JOBS = ("mkdir -p /etc/systemd/system/pcci-worker.service.d && "
             "ln -sf /usr/share/pcci-worker/root-jobs.conf /etc/systemd/system/pcci-worker.service.d/ && "
             "systemctl daemon-reload && systemctl restart pcci-worker")


def run_on_pi1(bed, body):
    status, submitted = api(bed, "POST", "/job", dict(body, workers=["pi1"]))
    assert status == 202, submitted
    return api(bed, "GET", "/pool/%s?wait=60" % submitted["id"])[1]["jobs"]["pi1"]


def pi1_online(bed):
    return [w for w in api(bed, "GET", "/workers")[1]["workers"] if w["name"] == "pi1" and w["online"]]


def test_the_readmes_apt_get_upgrade_works_after_the_documented_root_jobs_step(bed):
    wait_until(lambda: pi1_online(bed), timeout=40, what="pi1 online")
    refused = run_on_pi1(bed, {"cmd": "apt-get -y upgrade"})
    assert refused["state"] == "failed" and "are you root" in refused["stderr"]
    # One restart for both (systemd limits how often a unit may start in a row).
    bed.worker.sh("sed -i 's/^allowed_users: .*/allowed_users: [nobody]/' /etc/pcci/worker.yaml")
    bed.worker.sh(ROOT_JOBS)
    wait_until(lambda: pi1_online(bed) and pi1_online(bed)[0]["users"] == ["root", "nobody"], timeout=40,
               what="pi1 back, offering root and nobody")
    upgraded = run_on_pi1(bed, {"cmd": "apt-get -y upgrade && id -un"})
    assert upgraded["state"] == "succeeded" and upgraded["stdout"].endswith("root\n"), upgraded
    # The same worker drops to another allowed user for one job, in the job's cgroup.
    assert run_on_pi1(bed, {"cmd": "id -un; echo $HOME", "user": "nobody"})["stdout"] == "nobody\n/nonexistent\n"
    bed.worker.sh("rm /etc/systemd/system/pcci-worker.service.d/root-jobs.conf && "
                  "sed -i 's/^allowed_users: .*/allowed_users: []/' /etc/pcci/worker.yaml && "
                  "systemctl daemon-reload && systemctl reset-failed pcci-worker && systemctl restart pcci-worker")
    wait_until(lambda: pi1_online(bed) and pi1_online(bed)[0]["users"] == ["_pcci-worker"], timeout=40,
               what="pi1 back as _pcci-worker")


def test_on_a_host_that_is_master_and_worker_jobs_cannot_read_the_masters_secrets(bed):
    master = bed.master
    master.sh("dpkg -i /debs/pcci-worker_*.deb")
    master.sh("sed -i 's/^master_host: .*/master_host: 127.0.0.1/; s/^node_name: .*/node_name: both/' "
              "/etc/pcci/worker.yaml && systemctl restart pcci-worker")
    wait_until(lambda: [w for w in api(bed, "GET", "/workers")[1]["workers"] if w["name"] == "both" and w["online"]],
               timeout=40, what="the master's own worker online")
    secrets = ("/etc/pcci/api-tokens", "/var/lib/pcci-master/tls/api.key", "/var/lib/pcci-master/tls/worker-link.key",
               "/var/lib/pcci-master/pcci.sqlite3")
    probe = "; ".join("cat %s >/dev/null 2>&1 && echo READ %s || echo DENIED %s" % (f, f, f) for f in secrets)
    status, submitted = api(bed, "POST", "/job", {"cmd": probe + "; id -un", "workers": ["both"]})
    assert status == 202
    job = api(bed, "GET", "/pool/%s?wait=30" % submitted["id"])[1]["jobs"]["both"]
    assert job["stdout"].splitlines() == ["DENIED %s" % f for f in secrets] + ["_pcci-worker"], job
    master.sh("systemctl stop pcci-worker && apt-get purge -y pcci-worker")


def test_upgrade_keeps_edited_config_and_history(bed):
    bed.master.sh("dpkg -i /debs-upgrade/python3-pcci_*.deb /debs-upgrade/pcci-master_*.deb")
    bed.worker.sh("dpkg -i /debs-upgrade/python3-pcci_*.deb /debs-upgrade/pcci-worker_*.deb")
    assert bed.master.sh("dpkg-query -W -f '${Version}' pcci-master").stdout == UPGRADE_VERSION
    assert "api_host: 0.0.0.0" in bed.master.sh("cat /etc/pcci/master.yaml").stdout
    assert "master_host: %s" % bed.master.address in bed.worker.sh("cat /etc/pcci/worker.yaml").stdout
    wait_until(lambda: is_active(bed.master, "pcci-master") == "active", timeout=30, what="master active")
    wait_until(lambda: api(bed, "GET", "/health")[0] == 200, timeout=30, what="master answering")
    assert api(bed, "GET", "/pool/%s" % bed.pools["first"]["id"])[1] == bed.pools["first"]
    wait_until(lambda: [w for w in api(bed, "GET", "/workers")[1]["workers"] if w["online"]], timeout=40,
               what="pi1 back after upgrade")


def test_remove_keeps_config_and_history_and_purge_removes_them(bed):
    master = bed.master
    master.sh("apt-get remove -y pcci-master")
    assert master.sh("test -f /etc/pcci/master.yaml && test -f /var/lib/pcci-master/pcci.sqlite3", check=False).returncode == 0
    master.sh("apt-get purge -y pcci-master")
    gone = master.sh("ls /etc/pcci /var/lib/pcci-master 2>&1", check=False).stdout
    assert "master.yaml" not in gone and "api-tokens" not in gone and "pcci.sqlite3" not in gone
    worker = bed.worker
    worker.sh("apt-get purge -y pcci-worker")
    assert worker.sh("test -e /etc/pcci/worker.yaml || test -e /var/lib/pcci-worker", check=False).returncode != 0


# -- the signed apt repository -----------------------------------------------------------

def build_repo(out, keyhome, *deb_dirs):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([os.path.join(repo, "scripts", "build-repo"), *deb_dirs], check=True, capture_output=True,
                   timeout=300, env=dict(os.environ, PCCI_REPO_OUT=str(out), PCCI_REPO_GNUPGHOME=str(keyhome)))


def test_a_pi_installs_and_upgrades_from_the_signed_apt_repository(debs, tmp_path_factory):
    """make repo, then as README says: the keyring in /etc/apt/keyrings, one sources line,
    apt install pcci-worker; a newer build, apt upgrade, its configuration and history kept;
    a repository tampered with after signing is refused."""
    current, upgrade = debs
    base = tmp_path_factory.mktemp("apt-repo")
    served, keyhome = base / "served", base / "key"
    served.mkdir()
    build_repo(served / "repo", keyhome, current)
    (base / "bed").mkdir()
    testbed = nspawn.Testbed(str(base / "bed"))
    try:
        pi = testbed.host("pi9", nspawn.golden_image("bookworm"), [(str(served), "/srv/pcci")])
        pi.sh("install -d -m 0755 /etc/apt/keyrings && cp /srv/pcci/repo/pcci-archive-keyring.gpg "
              "/etc/apt/keyrings/pcci.gpg && echo 'deb [signed-by=/etc/apt/keyrings/pcci.gpg] "
              "file:/srv/pcci/repo stable main' > /etc/apt/sources.list.d/pcci.list")
        # Only this source: the container has no route to Debian's mirrors.
        apt = ("DEBIAN_FRONTEND=noninteractive apt-get -o Dir::Etc::SourceList=/etc/apt/sources.list.d/pcci.list "
               "-o Dir::Etc::SourceParts=- -o Dpkg::Options::=--force-confold ")
        pi.sh(apt + "update")
        pi.sh(apt + "install -y pcci-worker")
        assert pi.sh("dpkg-query -W -f '${Version}' pcci-worker python3-pcci").stdout == "0.1.00.1.0"
        pi.sh("sed -i 's/^master_host: .*/master_host: 10.9.9.9/' /etc/pcci/worker.yaml && "
              "echo kept > /var/lib/pcci-worker/history-marker")

        build_repo(served / "repo", keyhome, current, upgrade)        # the same key signs the newer build
        pi.sh(apt + "update")
        pi.sh(apt + "upgrade -y")
        assert pi.sh("dpkg-query -W -f '${Version}' pcci-worker").stdout == UPGRADE_VERSION
        assert "master_host: 10.9.9.9" in pi.sh("cat /etc/pcci/worker.yaml").stdout
        assert pi.sh("cat /var/lib/pcci-worker/history-marker").stdout == "kept\n"

        # An index changed after signing: apt refuses it (fetched afresh).
        with open(served / "repo" / "dists" / "stable" / "main" / "binary-amd64" / "Packages", "a") as handle:
            handle.write("\nPackage: evil\nVersion: 9\nArchitecture: all\nFilename: pool/main/evil.deb\nSize: 1\n")
        os.remove(served / "repo" / "dists" / "stable" / "main" / "binary-amd64" / "Packages.gz")
        pi.sh("rm -rf /var/lib/apt/lists/*")
        refused = pi.sh(apt + "update", check=False)
        assert refused.returncode != 0 and "Hash Sum mismatch" in refused.stdout + refused.stderr, refused.stdout
        assert pi.sh("apt-cache show evil", check=False).returncode != 0
        # A repository signed with another key: refused too.
        build_repo(served / "repo", base / "another-key", current, upgrade)
        refused = pi.sh(apt + "update", check=False)
        assert refused.returncode != 0 and "NO_PUBKEY" in refused.stdout + refused.stderr, refused.stdout
    finally:
        testbed.close()
