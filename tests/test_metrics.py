"""GET /metrics on a real master with real workers, read back with prometheus_client's own
parser, as Prometheus would scrape it; and the rules for who may scrape without a token."""

import os
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_until
from pcci import config
from pcci.errors import ConfigError

ADMIN = "admin-token-" + "m" * 24
READER = "reader-token-" + "r" * 24
TOKENS = [{"name": "admin", "scope": "admin", "token": ADMIN}, {"name": "grafana", "scope": "read", "token": READER}]


def scrape(cluster, token=None):
    """(status, {(name, frozenset(labels)): value}, content type) of one scrape."""
    request = urllib.request.Request("http://127.0.0.1:%d/metrics" % cluster.api_port)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            kind = response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers["Content-Type"]
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return 200, samples, kind


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def worker_labels(name, labels=None, keys=("rack",)):
    values = {"node": name}
    for key in keys:
        values["label_" + key] = (labels or {}).get(key, "")
    return values


def test_the_workers_gauges_match_get_workers(cluster):
    cluster.start_master(api_tokens=TOKENS)
    # A long heartbeat interval: the stats stay put between the two reads compared.
    cluster.start_worker("pi1", labels={"rack": "b"}, heartbeat_interval="60s")
    cluster.start_worker("pi2", heartbeat_interval="60s")
    wait_until(lambda: all(w["stats"] for w in cluster.api("GET", "/workers")[1]["workers"]), what="stats")
    workers = {w["name"]: w for w in cluster.api("GET", "/workers")[1]["workers"]}
    status, samples, kind = scrape(cluster, READER)
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    assert value(samples, "pcci_workers_connected") == 2 and value(samples, "pcci_workers_known") == 2
    for name, worker in workers.items():
        labels = worker_labels(name, worker["labels"])
        stats = worker["stats"]
        assert value(samples, "pcci_worker_online", **labels) == 1
        assert value(samples, "pcci_worker_cpu_percent", **labels) == pytest.approx(stats["cpuPercent"])
        assert value(samples, "pcci_worker_memory_total_bytes", **labels) == stats["memory"]["total"]
        assert value(samples, "pcci_worker_memory_available_bytes", **labels) == stats["memory"]["available"]
        assert value(samples, "pcci_worker_disk_free_bytes", **labels) == stats["disk"]["free"]
        assert value(samples, "pcci_worker_disk_total_bytes", **labels) == stats["disk"]["total"]
        assert value(samples, "pcci_worker_load1", **labels) == pytest.approx(stats["loadAverage"][0])
        assert value(samples, "pcci_worker_running_jobs", **labels) == len(worker["runningJobs"])
        assert 0 <= value(samples, "pcci_worker_last_heartbeat_age_seconds", **labels) < 60
        if stats["temperature"] is None:      # no sensor here: no sample, rather than a made-up 0
            assert value(samples, "pcci_worker_temperature_celsius", **labels) is None
        else:
            assert value(samples, "pcci_worker_temperature_celsius", **labels) == stats["temperature"]
    assert value(samples, "pcci_store_bytes") >= os.path.getsize(
        os.path.join(cluster.base, "master-state", "pcci.sqlite3"))
    assert value(samples, "pcci_store_saving") == 1

    # A worker that goes away: online 0, and its resources are no longer claimed.
    cluster.workers["pi2"].stop()
    wait_until(lambda: value(scrape(cluster, READER)[1], "pcci_worker_online", **worker_labels("pi2")) == 0,
               what="pi2 offline in the metrics")
    _, samples, _ = scrape(cluster, READER)
    assert value(samples, "pcci_worker_cpu_percent", **worker_labels("pi2")) is None
    assert value(samples, "pcci_workers_connected") == 1 and value(samples, "pcci_workers_known") == 2


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed (./scripts/setup-deps)")
def test_prometheus_own_linter_finds_nothing_to_say_about_the_exposition(cluster):
    cluster.start_master()
    cluster.start_worker("pi1", labels={"rack": "b", "model.name": "pi4"})
    cluster.run("true", ["pi1"])
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % cluster.api_port, timeout=30) as response:
        text = response.read()
    assert b'label_model_name="pi4"' in text
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert lint.returncode == 0 and lint.stdout == lint.stderr == b"", lint.stdout + lint.stderr


def test_jobs_pools_and_latencies_are_counted(cluster):
    cluster.start_master(api_tokens=TOKENS)
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    cluster.run("true", ["pi1", "pi2"])
    cluster.run("exit 3", ["pi1"])
    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 600", "workers": ["pi2"]})
    assert status == 202
    cluster.wait_running(submitted["id"], "pi2")
    assert cluster.api("PUT", "/kill/%s" % submitted["id"])[0] == 200
    cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])
    assert cluster.api("POST", "/job", {"cmd": "true", "workers": ["nosuch"]})[0] == 202   # ends at once

    _, samples, _ = scrape(cluster, ADMIN)
    assert value(samples, "pcci_pools_submitted_total") == 4
    assert value(samples, "pcci_jobs_ended_total", state="succeeded") == 2
    assert value(samples, "pcci_jobs_ended_total", state="failed") == 1
    assert value(samples, "pcci_jobs_ended_total", state="killed") == 1
    assert value(samples, "pcci_jobs_ended_total", state="unknown_worker") == 1
    # Four results came back from workers, each committed before it was acknowledged.
    assert value(samples, "pcci_result_commit_seconds_count") == 4
    assert value(samples, "pcci_job_duration_seconds_count") == 4
    assert value(samples, "pcci_api_request_duration_seconds_count", method="POST", route="/job", code="202") == 4
    assert value(samples, "pcci_api_request_duration_seconds_count", method="PUT", route="/kill/<pool_id>",
                 code="200") == 1
    assert value(samples, "pcci_pools_active") == 0


def test_a_token_is_needed_unless_the_scraper_is_on_a_trusted_network(cluster):
    cluster.start_master(api_tokens=TOKENS)
    status, body, _ = scrape(cluster)
    assert status == 401 and "missing_token" in body
    assert scrape(cluster, "not-a-token-" + "x" * 20)[0] == 401
    assert scrape(cluster, READER)[0] == 200
    cluster.master.stop()

    cluster.start_master(api_tokens=TOKENS, metrics_open_to=["10.0.0.0/8"])    # another network
    assert scrape(cluster)[0] == 401
    cluster.master.stop()

    cluster.start_master(api_tokens=TOKENS, metrics_open_to=["127.0.0.0/8"])
    assert scrape(cluster)[0] == 200
    # ... for /metrics alone: everything else keeps its token.
    assert cluster.api("GET", "/workers", token=None)[0] == 401


def test_metrics_open_to_takes_networks_only():
    assert [str(n) for n in config.networks(["10.0.0.0/8", "192.168.1.7", "fd00::/8"])] == \
        ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
    with pytest.raises(ValueError, match="not an IP network"):
        config.networks(["10.0.0.0/33"])
    with pytest.raises(ValueError, match="list of networks"):
        config.networks("10.0.0.0/8")
    with pytest.raises(ConfigError, match="metrics_open_to"):
        config.validate({"metrics_open_to": ["everyone"]}, config.MASTER_KEYS, "master.yaml")


def test_without_the_library_the_master_runs_and_says_why_metrics_are_off(cluster, tmp_path):
    # A prometheus_client that cannot be imported, ahead of the real one on the path.
    shadow = tmp_path / "shadow" / "prometheus_client"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    cluster.python_path = [str(tmp_path / "shadow")]
    cluster.start_master(api_tokens=TOKENS)
    cluster.start_worker("pi1")
    status, body = cluster.api("GET", "/metrics", token=ADMIN)
    assert status == 503 and body["error"]["code"] == "metrics_unavailable"
    assert "python3-prometheus-client" in body["error"]["message"]
    assert cluster.run("echo still serving", ["pi1"])["jobs"]["pi1"]["stdout"] == "still serving\n"
    assert "GET /metrics is off" in cluster.master.log()


def test_a_tally_counts_each_observation_in_the_buckets_whose_bound_it_does_not_exceed():
    from pcci.master.metrics_samples import Tally
    tally = Tally((0.01, 0.1, 1))
    for value in (0.005, 0.01, 0.05, 0.1, 0.5, 7):
        tally.observe(value)
    assert tally.cumulative() == [("0.01", 2), ("0.1", 4), ("1.0", 5), ("+Inf", 6)]
    assert tally.total == pytest.approx(7.665)
