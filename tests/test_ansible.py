"""The Ansible roles, run with ansible-playbook over SSH against booted hosts.

One master and two workers (a third joins later), each a systemd-nspawn container with
sshd in its own network namespace; ansible-playbook and curl run in the controller
namespace, which has no default route. Tests run in order and build on each other.
"""

import json
import os
import re
import subprocess

import pytest
import yaml

import nspawn
from conftest import REPO, wait_until

ANSIBLE_BIN = os.environ.get("PCCI_ANSIBLE_BIN", os.path.join(REPO, ".venv-ansible", "bin"))
SKIP_REASON = nspawn.nspawn_supported() or (
    None if os.path.exists(os.path.join(ANSIBLE_BIN, "ansible-playbook"))
    else "needs ansible-playbook in %s (./scripts/test installs it)" % ANSIBLE_BIN)
# The playbook tests boot containers; the lint and the collection build take a minute between them.
pytestmark = [pytest.mark.skipif(SKIP_REASON is not None, reason="ansible tests: %s" % (SKIP_REASON,)),
              pytest.mark.container, pytest.mark.root, pytest.mark.slow]
PLAYBOOK_DIR = os.path.join(REPO, "ansible")


def test_ansible_lint_passes_the_production_profile():
    result = subprocess.run([os.path.join(ANSIBLE_BIN, "ansible-lint")], cwd=PLAYBOOK_DIR, capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, PATH=ANSIBLE_BIN + ":" + os.environ["PATH"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


# The current ansible-core (the venv) and Debian 12 bookworm's own (2.14), which is what a
# bookworm controller has.
ANSIBLES = [pytest.param(ANSIBLE_BIN, id="current"),
            pytest.param("/usr/bin", id="bookworm", marks=pytest.mark.skipif(
                not os.path.exists("/usr/bin/ansible-galaxy"), reason="Debian's ansible-core is not installed"))]


@pytest.mark.parametrize("ansible_bin", ANSIBLES)
def test_the_roles_build_and_install_as_the_collection_pcci_cluster(tmp_path, ansible_bin):
    """ansible-galaxy collection build, then install; the collection's own playbook runs by
    its name (pcci.cluster.site), and one naming the roles by their collection names parses;
    the collection's version is PCCI's."""
    import tarfile
    from pcci import __version__
    with open(os.path.join(PLAYBOOK_DIR, "galaxy.yml")) as handle:
        galaxy_meta = yaml.safe_load(handle)
    assert galaxy_meta["version"] == __version__
    assert "example.org" not in json.dumps({k: v for k, v in galaxy_meta.items() if k != "authors"})
    env = dict(os.environ, PATH=ansible_bin + ":" + os.environ["PATH"], ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "c"))
    galaxy = os.path.join(ansible_bin, "ansible-galaxy")
    built = subprocess.run([galaxy, "collection", "build", PLAYBOOK_DIR, "--output-path", str(tmp_path)],
                           capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    archive = tmp_path / ("pcci-cluster-%s.tar.gz" % __version__)
    with tarfile.open(archive) as tar:
        members = set(tar.getnames())
    for role in ("pcci", "pcci_master", "pcci_worker"):
        assert {"roles/%s/tasks/main.yml" % role, "roles/%s/README.md" % role,
                "roles/%s/meta/argument_specs.yml" % role} <= members
    assert {"README.md", "meta/runtime.yml", "MANIFEST.json", "CHANGELOG.md", "playbooks/site.yml"} <= members
    assert not [name for name in members if "pcci-secrets" in name or name.endswith(".key")]
    installed = subprocess.run([galaxy, "collection", "install", str(archive)], capture_output=True, text=True,
                               timeout=300, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"master": {"hosts": {"m1": {}}},
                                                             "workers": {"hosts": {"w1": {}}}}}}))
    playbook_cmd = os.path.join(ansible_bin, "ansible-playbook")
    site_tasks = subprocess.run([playbook_cmd, "--list-tasks", "-i", str(inventory), "pcci.cluster.site"],
                                capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert site_tasks.returncode == 0, site_tasks.stdout + site_tasks.stderr
    assert "does not support Ansible version" not in site_tasks.stderr, site_tasks.stderr
    assert "pcci.cluster.pcci_master : " in site_tasks.stdout and "pcci.cluster.pcci_worker : " in site_tasks.stdout
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "Master", "hosts": "master", "become": True, "roles": [{"role": "pcci.cluster.pcci_master"}]},
        {"name": "Workers", "hosts": "workers", "become": True, "roles": [{"role": "pcci.cluster.pcci_worker"}]}]))
    checked = subprocess.run([playbook_cmd, "--syntax-check", "-i", "localhost,",
                              str(playbook)], capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = subprocess.run([playbook_cmd, "--list-tags", "-i", "localhost,",
                             str(playbook)], capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    # The master's role also applies its schedules (tag schedules); the worker's has none.
    assert listed.stdout.count("TASK TAGS: [always, configure, install, schedules, service]") == 1, listed.stdout
    assert listed.stdout.count("TASK TAGS: [always, configure, install, service]") == 1, listed.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("ansible")
    dist = nspawn.build_debs(str(base / "dist"))
    image = nspawn.golden_image("bookworm")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "id")], check=True)
    public_key = (base / "id.pub").read_text()
    testbed = nspawn.Testbed(str(base))
    testbed.base = base
    testbed.public_key = public_key

    def add_host(name, binds=()):
        host = testbed.host(name, image, binds)
        host.sh("mkdir -p -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys", stdin=public_key)
        wait_until(lambda: host.sh("systemctl is-active ssh", check=False).stdout.strip() == "active",
                   what="sshd on %s" % name)
        return host
    testbed.add_host = add_host
    testbed.dist = dist
    try:
        for name in ("master", "pi1", "pi2"):
            add_host(name)
        testbed.inventory = {"all": {
            "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(base / "id"),
                     "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                     "pcci_deb_dir": dist, "pcci_secrets_dir": str(base / "secrets"),
                     "pcci_master_pool_retention": "7d", "pcci_master_groups": {"pis": "pi[1-2]"},
                     # The controller (10.213.7.254) scrapes /metrics as Prometheus would, without a token.
                     "pcci_master_metrics_open_to": ["10.213.7.254/32"],
                     # Applied through the API from the controller (tasks/schedules.yml).
                     "pcci_master_schedules": [{"name": "uptime", "when": "every 1h", "cmd": "uptime",
                                                "workers": "@pis", "timeout": 60}]},
            "children": {"master": {"hosts": {"master": {"ansible_host": testbed.hosts["master"].address}}},
                         "workers": {"hosts": {n: {"ansible_host": testbed.hosts[n].address,
                                                   "pcci_worker_labels": {"model": "pi4" if n == "pi1" else "pi3"}}
                                               for n in ("pi1", "pi2")}}}}}
        yield testbed
    finally:
        testbed.close()


def play(site, *options):
    """Run site.yml from the controller namespace (with ``options``, e.g. --check --diff);
    return {host: recap counts}."""
    inventory = site.base / "inventory.yml"
    inventory.write_text(yaml.safe_dump(site.inventory))
    # SSH's shared connections are keyed by address and user: another run's hosts (every
    # testbed uses the same addresses, each behind its own bridge) must never get ours.
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PLAYBOOK_DIR, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", PATH=ANSIBLE_BIN + ":" + os.environ["PATH"],
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(site.base / "ssh-control"))
    result = subprocess.run(["ip", "netns", "exec", site.controller, os.path.join(ANSIBLE_BIN, "ansible-playbook"),
                             "-i", str(inventory), *options, os.path.join(PLAYBOOK_DIR, "playbooks", "site.yml")],
                            capture_output=True, text=True, timeout=900, env=env, cwd=PLAYBOOK_DIR)
    site.last_output = result.stdout + result.stderr
    recap = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    assert recap, site.last_output[-5000:]
    return recap


def token(site):
    return (site.base / "secrets" / "api.token").read_text().strip()


def api(site, method, path, body=None):
    """Over https, checked with the certificate the role copied to the controller."""
    return site.api(site.hosts["master"].address, method, path, token(site), body,
                    cacert=str(site.base / "secrets" / "api.crt"))[1]


def online(site):
    answer = api(site, "GET", "/workers") or {"workers": []}
    return sorted(w["name"] for w in answer.get("workers", []) if w["online"])


def started_at(host, unit):
    return host.sh("systemctl show -p ActiveEnterTimestampMonotonic --value %s" % unit).stdout.strip()


def test_check_mode_on_fresh_hosts_completes_and_changes_nothing_anywhere(site):
    """--check --diff before anything is installed: no failure, no file on the hosts, and
    no secret written on the controller (a password lookup would write one)."""
    recap = play(site, "--check", "--diff")
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values()), \
        site.last_output[-6000:]
    assert all(counts["changed"] > 0 for counts in recap.values())       # it says what it would do
    assert not (site.base / "secrets").exists()
    for name in ("master", "pi1", "pi2"):
        assert site.hosts[name].sh("ls /etc/pcci /var/cache/pcci-debs", check=False).returncode != 0
    # The master's configuration is shown: its secrets live in files of their own.
    shown = site.last_output[site.last_output.find("Write /etc/pcci/master.yaml"):][:4000]
    assert "+api_tokens_file: /etc/pcci/api-tokens" in shown, shown
    assert "made-on-the-first-real-run" not in site.last_output       # placeholders are never shown


def test_site_playbook_on_fresh_hosts_brings_up_a_working_cluster(site):
    recap = play(site)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values()), site.last_output
    assert set(recap) == {"master", "pi1", "pi2"}
    assert "pcci_cluster_key" not in site.last_output and token(site) not in site.last_output
    wait_until(lambda: online(site) == ["pi1", "pi2"], timeout=60, what="both workers online")
    submitted = api(site, "POST", "/job", {"cmd": "echo ran on $(hostname)", "workers": ["pi1", "pi2"]})
    pool = api(site, "GET", "/pool/%s?wait=30" % submitted["id"])
    assert {n: j["stdout"] for n, j in pool["jobs"].items()} == {"pi1": "ran on pi1\n", "pi2": "ran on pi2\n"}
    # The roles' groups and labels reach the master and the workers: a target uses both.
    targeted = api(site, "POST", "/job", {"cmd": "true", "workers": "@pis", "exclude": "model=pi4"})
    assert list(targeted["jobs"]) == ["pi2"]
    # The role's schedules are on the master, as given, marked as the role's.
    schedule = api(site, "GET", "/schedules/uptime")
    assert (schedule["when"], schedule["cmd"], schedule["workers"], schedule["enabled"], schedule["managedBy"]) == \
        ("every 1h", "uptime", "@pis", True, "ansible")
    # metrics_open_to: the controller scrapes without a token; the API itself still wants one.
    metrics = site.client("curl", "-sS", "--fail", "--cacert", str(site.base / "secrets" / "api.crt"),
                          "https://%s:8080/metrics" % site.hosts["master"].address)
    assert metrics.returncode == 0 and 'pcci_worker_online{label_model="pi4",node="pi1"} 1.0' in metrics.stdout
    assert site.client("curl", "-sS", "--fail", "--cacert", str(site.base / "secrets" / "api.crt"),
                       "https://%s:8080/workers" % site.hosts["master"].address).returncode != 0


def test_second_run_changes_nothing(site):
    recap = play(site)
    assert {host: counts["changed"] for host, counts in recap.items()} == {"master": 0, "pi1": 0, "pi2": 0}, \
        site.last_output[-6000:]
    recap = play(site, "--check", "--diff")
    assert {host: (counts["changed"], counts["failed"]) for host, counts in recap.items()} == \
        {"master": (0, 0), "pi1": (0, 0), "pi2": (0, 0)}, site.last_output[-6000:]


def test_changing_pool_retention_and_the_schedules_touches_and_restarts_only_the_master(site):
    """Also, in the same plays (no play of their own): with pcci_master_schedules_exclusive,
    a schedule dropped from the list is deleted, one made by hand is kept; the next test's
    play shows a further run changes nothing on the master but what it expects."""
    before = {name: started_at(site.hosts[name], "pcci-master" if name == "master" else "pcci-worker")
              for name in ("master", "pi1", "pi2")}
    site.inventory["all"]["vars"]["pcci_master_pool_retention"] = "24h"
    by_hand = {"name": "by-hand", "when": "every 1h", "cmd": "true", "workers": "@pis"}
    assert api(site, "POST", "/schedules", by_hand)["name"] == "by-hand"
    site.inventory["all"]["vars"].update(pcci_master_schedules_exclusive=True, pcci_master_schedules=[
        {"name": "disk", "when": "every 1h", "cmd": "df -h /", "workers": "@pis"}])
    # Asked first: the diff of the master's configuration, nothing changed yet.
    recap = play(site, "--check", "--diff")
    assert recap["master"]["changed"] >= 1 and recap["pi1"]["changed"] == 0
    assert '-pool_retention: "7d"' in site.last_output and '+pool_retention: "24h"' in site.last_output
    assert 'pool_retention: "7d"' in site.hosts["master"].sh("cat /etc/pcci/master.yaml").stdout
    recap = play(site)
    assert recap["master"]["changed"] >= 1 and recap["pi1"]["changed"] == 0 and recap["pi2"]["changed"] == 0
    assert 'pool_retention: "24h"' in site.hosts["master"].sh("cat /etc/pcci/master.yaml").stdout
    assert started_at(site.hosts["master"], "pcci-master") != before["master"]
    assert started_at(site.hosts["pi1"], "pcci-worker") == before["pi1"]
    assert started_at(site.hosts["pi2"], "pcci-worker") == before["pi2"]
    wait_until(lambda: online(site) == ["pi1", "pi2"], timeout=60, what="workers back after the master restart")
    held = {schedule["name"]: schedule.get("managedBy") for schedule in api(site, "GET", "/schedules")["schedules"]}
    assert held == {"by-hand": None, "disk": "ansible"}, held


def test_adding_a_third_worker_brings_it_online_without_touching_the_others(site):
    host = site.add_host("pi3")
    # pi3 runs jobs as root, or as nobody when a job asks: one role variable each.
    site.inventory["all"]["children"]["workers"]["hosts"]["pi3"] = {
        "ansible_host": host.address, "pcci_worker_root_jobs": True, "pcci_worker_allowed_users": ["nobody"]}
    master_started = started_at(site.hosts["master"], "pcci-master")
    recap = play(site)
    assert recap["pi3"]["failed"] == 0 and recap["pi3"]["changed"] > 0, site.last_output[-4000:]
    # The master only learns that the inventory's groups now hold pi3: its groups file and a
    # reload (2 changes), no restart.
    assert recap["master"]["changed"] == 2 and recap["pi1"]["changed"] == 0 and recap["pi2"]["changed"] == 0
    assert "pi3" in site.hosts["master"].sh("cat /etc/pcci/groups.yaml").stdout
    assert started_at(site.hosts["master"], "pcci-master") == master_started
    wait_until(lambda: online(site) == ["pi1", "pi2", "pi3"], timeout=60, what="pi3 online")
    pool = api(site, "POST", "/job", {"cmd": "true", "workers": "@workers"})
    assert sorted(pool["jobs"]) == ["pi1", "pi2", "pi3"]
    for user, expected in ((None, "root"), ("nobody", "nobody")):
        body = dict({"cmd": "id -un", "workers": ["pi3"]}, **({"user": user} if user else {}))
        pool = api(site, "GET", "/pool/%s?wait=30" % api(site, "POST", "/job", body)["id"])
        assert pool["jobs"]["pi3"]["stdout"] == expected + "\n", pool["jobs"]["pi3"]


def test_a_worker_installed_from_the_signed_apt_repository(site):
    """pcci_deb_source: apt with the repository make repo built: the role adds its key and
    source, apt installs, and a second run changes nothing."""
    served = site.base / "served"
    served.mkdir()
    subprocess.run([os.path.join(REPO, "scripts", "build-repo"), site.dist], check=True, capture_output=True,
                   timeout=300, env=dict(os.environ, PCCI_REPO_OUT=str(served / "repo"),
                                         PCCI_REPO_GNUPGHOME=str(site.base / "repo-key")))
    host = site.add_host("pi4", binds=[(str(served), "/srv/pcci")])
    # These namespaces have no route to Debian's mirrors: apt reads only the PCCI source.
    host.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*")
    site.inventory["all"]["children"]["workers"]["hosts"]["pi4"] = {
        "ansible_host": host.address, "pcci_deb_source": "apt", "pcci_apt_repo_url": "file:/srv/pcci/repo",
        "pcci_apt_repo_keyring_src": str(served / "repo" / "pcci-archive-keyring.gpg")}
    recap = play(site)
    assert recap["pi4"]["failed"] == 0 and recap["pi4"]["changed"] > 0, site.last_output[-4000:]
    assert host.sh("cat /etc/apt/sources.list.d/pcci.list").stdout == \
        "deb [signed-by=/etc/apt/keyrings/pcci.gpg] file:/srv/pcci/repo stable main\n"
    assert "Origin: PCCI" in host.sh("apt-cache policy pcci-worker; cat /var/lib/apt/lists/*InRelease").stdout
    wait_until(lambda: "pi4" in online(site), timeout=60, what="pi4 online")
    recap = play(site)
    assert recap["pi4"]["changed"] == 0, site.last_output[-4000:]


def test_the_templates_for_two_masters_on_one_database_make_configs_pcci_accepts(tmp_path):
    """The roles' templates rendered by ansible-playbook (connection local, nothing else
    touched) for an inventory with two masters and a store_url: every master gets the
    store and lease keys, every worker both masters; pcci check-config accepts them all."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"},
        "children": {"master": {"hosts": {"pm1": {"ansible_host": "10.0.0.1"}, "pm2": {"ansible_host": "10.0.0.2"}}},
                     "workers": {"hosts": {"pi1": {"ansible_host": "10.0.0.11"},
                                           "pi2": {"ansible_host": "10.0.0.12", "pcci_worker_node_name": "cam2"}}},
                     "rack_a": {"hosts": {"pi1": {}, "pi2": {}, "pm1": {}}},
                     "cameras": {"hosts": {"pi2": {}}}}}}))
    roles = os.path.join(PLAYBOOK_DIR, "roles")
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "Render", "hosts": "all", "gather_facts": False,
         "vars_files": [os.path.join(roles, "pcci_master", "defaults", "main.yml"),
                        os.path.join(roles, "pcci_worker", "defaults", "main.yml")],
         "tasks": [{"name": "Master config", "when": "inventory_hostname in groups['master']",
                    "ansible.builtin.template": {"src": os.path.join(roles, "pcci_master", "templates",
                                                                     "master.yaml.j2"),
                                                 "dest": str(tmp_path) + "/{{ inventory_hostname }}.yaml"}},
                   {"name": "Master groups", "when": "inventory_hostname in groups['master']",
                    "ansible.builtin.template": {"src": os.path.join(roles, "pcci_master", "templates",
                                                                     "groups.yaml.j2"),
                                                 "dest": str(tmp_path) + "/{{ inventory_hostname }}-groups.yaml"}},
                   {"name": "Worker config", "when": "inventory_hostname in groups['workers']",
                    "ansible.builtin.template": {"src": os.path.join(roles, "pcci_worker", "templates",
                                                                     "worker.yaml.j2"),
                                                 "dest": str(tmp_path) + "/{{ inventory_hostname }}.yaml"}}]}]))
    # -e: the roles' defaults are read here as vars_files, which would win over inventory vars.
    result = subprocess.run([os.path.join(ANSIBLE_BIN, "ansible-playbook"), "-i", str(inventory), str(playbook),
                             "-e", "pcci_master_store_url=mariadb://pcci@db1,db2,db3/pcci",
                             "-e", json.dumps({"pcci_master_relay_networks": ["192.168.7.0/24"],
                                               "pcci_worker_relay_listen": "0.0.0.0:7715",
                                               "pcci_worker_relay_advertise": "192.168.7.3"})],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PATH=ANSIBLE_BIN + ":" + os.environ["PATH"]))
    assert result.returncode == 0, result.stdout + result.stderr
    from pcci import config
    for name in ("pm1", "pm2"):
        master = config.validate(yaml.safe_load((tmp_path / ("%s.yaml" % name)).read_text()), config.MASTER_KEYS, name)
        number = name[-1]
        assert (master.store_url, master.store_password_file, master.master_name, master.lease_time) == \
            ("mariadb://pcci@db1,db2,db3/pcci", "/etc/pcci/db-password", name, 6.0)
        assert master.advertise_api_url == "https://10.0.0.%s:8080" % number
        assert master.advertise_worker_address == "10.0.0.%s:7070" % number
        # One inventory drives both: its groups of workers are PCCI groups of their node names.
        assert master.groups_file == "/etc/pcci/groups.yaml"
        from pcci.master.group_file import read_groups
        rendered = dict(vars(master), groups_file=str(tmp_path / ("%s-groups.yaml" % name)))
        groups = read_groups(config.Config({k: v for k, v in rendered.items() if k != "source"}, name))
        assert groups == {"cameras": "cam2", "rack_a": "pi1,cam2", "workers": "pi1,cam2"}
    worker = config.validate(yaml.safe_load((tmp_path / "pi1.yaml").read_text()), config.WORKER_KEYS, "pi1")
    assert worker.master_hosts == [("10.0.0.1", 7070), ("10.0.0.2", 7070)] and worker.master_host is None
    assert (worker.relay_listen, worker.relay_advertise) == (("0.0.0.0", 7715), ("192.168.7.3", 0))
    assert [str(network) for network in master.relay_networks] == ["192.168.7.0/24"]
