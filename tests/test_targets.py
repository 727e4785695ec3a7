"""Targets as a clush or Salt user writes them, against a real master and labelled workers:
ranges, @groups, label selectors, *, exclusions; errors that point at the term; a
target that matches nothing refused; the CLI's -w/-g/-x/-a, and its refusal without."""

import time
import urllib.parse

import psutil
import pytest

from test_cli import pcci
from pcci.targets import fold, split_terms

READER = "targets-reader-" + "r" * 16
LABELS = {"pi1": {"model": "pi4", "rack": "a"}, "pi2": {"model": "pi3", "rack": "a"},
          "pi3": {"model": "pi4", "rack": "b"}, "web1": {"model": "x86", "rack": "b"}}


def start_farm(cluster):
    cluster.start_master(api_tokens=["targets-token-" + "t" * 16, {"name": "viewer", "scope": "read",
                                                                     "token": READER}],
                         groups={"pis": "pi[1-3]", "rack-b": "rack=b", "all-but-web": "*,!web1",
                                 "ghosts": "ghost[1-15000]", "ghosts-twice": "@ghosts,@ghosts"})
    for name, labels in LABELS.items():
        cluster.start_worker(name, labels=labels)
    cluster.env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    return cluster


@pytest.fixture
def farm(cluster):
    """A farm of this test's own: for tests that change it (reloads, memory measured)."""
    return start_farm(cluster)


@pytest.fixture(scope="module")
def shared_farm(module_cluster):
    """One farm for the tests that only read it: targets resolved, refused, listed."""
    return start_farm(module_cluster)


def submitted_workers(cluster, workers, exclude=None):
    body = {"cmd": "true", "workers": workers}
    if exclude is not None:
        body["exclude"] = exclude
    status, answer = cluster.api("POST", "/job", body)
    return status, (list(answer["jobs"]) if status == 202 else answer["error"])


@pytest.mark.parametrize("workers, exclude, expected", [
    ("pi[1-3]", None, ["pi1", "pi2", "pi3"]),
    ("pi[1-2],web1", None, ["pi1", "pi2", "web1"]),
    ("@pis", "pi2", ["pi1", "pi3"]),
    ("model=pi4", None, ["pi1", "pi3"]),
    ("@rack-b", None, ["pi3", "web1"]),
    ("*", "@pis", ["web1"]),
    ("@all-but-web", "rack=a", ["pi3"]),
    ("pi[1-3] !model=pi3", None, ["pi1", "pi3"]),
    (["pi1", "web1"], ["web1"], ["pi1"]),                # the original list form, with exclude
])
def test_an_expression_selects_workers_by_range_group_and_label(shared_farm, workers, exclude, expected):
    status, names = submitted_workers(shared_farm, workers, exclude)
    assert status == 202 and names == expected


def test_the_pool_records_the_expression_and_the_nodes_it_resolved_to(shared_farm):
    pool = shared_farm.run("hostname", "pi[1-4]", exclude="pi2")
    assert pool["target"] == {"workers": "pi[1-4]", "exclude": "pi2"}
    assert list(pool["jobs"]) == ["pi1", "pi3", "pi4"]
    assert pool["jobs"]["pi4"]["state"] == "unknown_worker"      # named, never registered
    assert pool["jobs"]["pi1"]["state"] == "succeeded"
    listed = shared_farm.api("GET", "/pools?limit=1")[1]["pools"][0]
    assert listed["target"] == pool["target"] and listed["workers"] == ["pi1", "pi3", "pi4"]


@pytest.mark.parametrize("workers, code, says", [
    ("pi[1-", "bad_target", "'pi[1-' at character 1"),
    ("pi1, @nowhere", "bad_target", "no group 'nowhere'"),
    ("pi1 model=", "bad_target", "'model=' at character 5"),
    ("ghost[1-3]", "no_match", "names no worker this master knows"),
    ("model=pi9", "no_match", "matches no worker"),
])
def test_a_malformed_or_empty_target_is_a_400_saying_why(shared_farm, workers, code, says):
    status, error = submitted_workers(shared_farm, workers)
    assert status == 400 and error["code"] == code and says in error["message"], error


def test_labels_are_shown_and_select_in_get_workers(shared_farm):
    workers = shared_farm.api("GET", "/workers")[1]["workers"]
    assert {w["name"]: w["labels"] for w in workers} == LABELS
    selected = shared_farm.api("GET", "/workers?target=rack%3Db&exclude=web1")[1]["workers"]
    assert [w["name"] for w in selected] == ["pi3"]
    assert shared_farm.api("GET", "/workers?target=pi%5B1-")[0] == 400


def test_the_cli_targets_like_clush_and_refuses_to_guess(shared_farm):
    refused = pcci("run", "--", "reboot", env=shared_farm.env)
    assert refused.returncode == 2 and "-a for every online worker" in refused.stderr
    ran = pcci("run", "-w", "pi[1-3]", "-x", "pi2", "--", "echo hi", env=shared_farm.env)
    assert ran.returncode == 0 and "pi[1,3] (exit 0)" in ran.stdout
    grouped = pcci("run", "-g", "model=pi4", "-g", "rack-b", "--", "echo hi", env=shared_farm.env)
    assert "pi[1,3],web1 (exit 0)" in grouped.stdout
    everyone = pcci("run", "-a", "-x", "@pis", "--", "echo hi", env=shared_farm.env)
    assert "web1 (exit 0)" in everyone.stdout and "pi" not in everyone.stdout.replace("echo", "")
    listed = pcci("workers", "-g", "model=pi4", env=shared_farm.env)
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["pi1", "pi3"]
    assert "model=pi4,rack=a" in listed.stdout
    bad = pcci("run", "-w", "pi[1-", "--", "true", env=shared_farm.env)
    assert bad.returncode == 1 and "'pi[1-' at character 1" in bad.stderr


def test_terms_split_at_top_level_commas_and_names_fold_into_ranges():
    assert split_terms("node[1,3-4], pi5 !pi[6-7]") == [(0, "node[1,3-4]"), (13, "pi5"), (17, "!pi[6-7]")]
    assert fold(["pi1", "pi2", "pi3", "pi5", "web1"]) == "pi[1-3,5],web1"


def listed_for_reader(cluster, target):
    return cluster.api("GET", "/workers?target=" + urllib.parse.quote(target), token=READER)


def test_a_huge_range_from_a_read_token_is_refused_before_it_is_expanded(farm):
    master = psutil.Process(farm.master.process.pid)
    before = master.memory_info().rss
    started = time.monotonic()
    status, answer = listed_for_reader(farm, "n[1-25000000]")
    took = time.monotonic() - started
    assert status == 400 and answer["error"]["code"] == "pool_too_large", answer
    assert "up to 25000000 workers" in answer["error"]["message"]
    # Before: 23 s of a blocked event loop and 3.5 GB more; now a count of the text.
    assert took < 5 and master.memory_info().rss - before < 100 * 2 ** 20
    assert farm.api("GET", "/health", token=None)[0] == 200
    assert all(w["online"] for w in farm.api("GET", "/workers", token=READER)[1]["workers"])
    assert farm.run("hostname", "pi1")["jobs"]["pi1"]["state"] == "succeeded"


@pytest.mark.parametrize("target, code, says", [
    (",".join(["n[1-20000]"] * 400), "pool_too_large", "up to 8000000 workers"),
    ("r[1-9]n[1-9999]", "pool_too_large", "up to 89991 workers"),
    ("@ghosts-twice", "pool_too_large", "up to 30000 workers"),
    ("n[0-9999999999999999999999]", "bad_target", "more than 18 digits"),
    ("n[1-2]" * 200, "bad_target", "more than 8 ranges"),
    ("n9[1-20000]", "bad_target", "same width"),
], ids=["400-ranges", "nested-ranges", "group-twice", "overflow", "200-ranges", "joined-digits"])
def test_an_oversized_or_overflowing_target_is_a_400_for_readers_and_submitters(shared_farm, target, code, says):
    status, answer = listed_for_reader(shared_farm, target)
    assert status == 400 and answer["error"]["code"] == code and says in answer["error"]["message"], answer
    status, error = submitted_workers(shared_farm, target)
    assert status == 400 and error["code"] == code and says in error["message"], error
    assert shared_farm.api("GET", "/health", token=None)[0] == 200


def test_repeated_terms_cost_their_text_not_a_lookup_each(shared_farm):
    status, answer = listed_for_reader(shared_farm, ",".join(["model=pi4", "@pis", "*"] * 200) + ",!web1")
    assert status == 200 and [w["name"] for w in answer["workers"]] == ["pi1", "pi3", "pi2"]


def test_groups_reload_on_sighup_and_a_bad_file_keeps_the_groups_in_use(farm):
    """systemctl reload pcci-master: a group changed, added or removed in master.yaml applies
    to the next target without a restart; a file that does not validate changes nothing."""
    import signal
    import yaml
    from conftest import wait_until

    def resolved(target):
        status, answer = farm.api("GET", "/workers?target=" + urllib.parse.quote(target), token=READER)
        return sorted(w["name"] for w in answer["workers"]) if status == 200 else answer["error"]["code"]

    def rewrite(groups):
        settings = dict(farm.master.settings, groups=groups)
        with open(farm.master.config_path, "w") as handle:
            yaml.safe_dump(settings, handle)

    assert resolved("@pis") == ["pi1", "pi2", "pi3"] and resolved("@web") == "bad_target"
    rewrite({"pis": "pi[1-2]", "web": "web1"})
    farm.master.signal(signal.SIGHUP)
    wait_until(lambda: resolved("@web") == ["web1"], what="the reloaded groups in use")
    assert resolved("@pis") == ["pi1", "pi2"] and resolved("@rack-b") == "bad_target"
    assert "reload: 2 group(s): pis, web" in farm.master.log()
    rewrite({"pis": "pi[1-", "web": "web1"})                  # does not parse: refused as a whole
    farm.master.signal(signal.SIGHUP)
    wait_until(lambda: "reload: kept the settings in use" in farm.master.log(), what="the refused reload logged")
    assert resolved("@pis") == ["pi1", "pi2"] and resolved("@web") == ["web1"]
    assert farm.master.process.poll() is None


def test_a_workers_labels_reload_on_sighup_while_its_job_goes_on(farm):
    """systemctl reload pcci-worker: new labels select the worker at once, and the job it was
    running finishes with its whole output (the worker reconnected to announce them)."""
    import signal
    import yaml
    from conftest import wait_until

    def resolved(target):
        status, answer = farm.api("GET", "/workers?target=" + urllib.parse.quote(target), token=READER)
        return sorted(w["name"] for w in answer["workers"]) if status == 200 else answer["error"]["code"]

    worker = farm.workers["pi1"]
    status, submitted = farm.api("POST", "/job", {"cmd": "sleep 1.5; echo kept", "workers": ["pi1"]})
    assert status == 202
    farm.wait_running(submitted["id"], "pi1")
    with open(worker.config_path, "w") as handle:
        yaml.safe_dump(dict(worker.settings, labels={"model": "pi5", "rack": "a"}), handle)
    worker.signal(signal.SIGHUP)
    wait_until(lambda: resolved("model=pi5") == ["pi1"], what="the new label in use")
    assert resolved("model=pi4") == ["pi3"]
    pool = farm.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]
    assert pool["jobs"]["pi1"]["state"] == "succeeded" and pool["jobs"]["pi1"]["stdout"] == "kept\n"
    with open(worker.config_path, "w") as handle:
        yaml.safe_dump(dict(worker.settings, labels={"bad key!": "x"}), handle)
    worker.signal(signal.SIGHUP)
    wait_until(lambda: "reload: kept the labels in use" in worker.log(), what="the refused reload logged")
    assert resolved("model=pi5") == ["pi1"] and worker.process.poll() is None


def test_a_groups_file_is_read_at_start_and_on_sighup_and_a_group_is_defined_once(cluster, tmp_path):
    """groups_file (the Ansible role writes one from its inventory): reread on SIGHUP, so a
    worker added to an inventory group is targeted without a restart."""
    import signal
    from conftest import wait_until
    groups_file = tmp_path / "groups.yaml"
    groups_file.write_text("rack_a: pi1\n")
    cluster.start_master(groups={"web": "web1"}, groups_file=str(groups_file))
    for name in ("pi1", "pi2", "web1"):
        cluster.start_worker(name)

    def resolved(target):
        status, answer = cluster.api("GET", "/workers?target=" + urllib.parse.quote(target))
        return sorted(w["name"] for w in answer["workers"]) if status == 200 else answer["error"]["code"]

    assert resolved("@rack_a") == ["pi1"] and resolved("@web") == ["web1"]
    pid = cluster.master.process.pid
    groups_file.write_text("rack_a: pi[1-2]\nall_pis: '@rack_a'\n")
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: resolved("@all_pis") == ["pi1", "pi2"], what="the file's groups reloaded")
    assert resolved("@rack_a") == ["pi1", "pi2"] and resolved("@web") == ["web1"]
    groups_file.write_text("web: pi1\n")                       # web is master.yaml's: refused as a whole
    cluster.master.signal(signal.SIGHUP)
    wait_until(lambda: "reload: kept the groups in use" in cluster.master.log(), what="the refused reload logged")
    assert "web defined in" in cluster.master.log() and resolved("@all_pis") == ["pi1", "pi2"]
    assert cluster.master.process.pid == pid and cluster.master.process.poll() is None
    result = pcci("check-config", "master", cluster.master.config_path)
    assert result.returncode == 1 and "groups_file" in result.stderr and "web defined in" in result.stderr
