"""The examples, run as a user would, against a real master, real workers and a real MariaDB."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import mariadb
from conftest import REPO, stop_process, wait_until

EXAMPLES = os.path.join(REPO, "examples")


@pytest.fixture
def pis(cluster):
    cluster.start_master(api_tokens=["example-token-" + "e" * 12])
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    cluster.env = dict(os.environ, PCCI_URL="http://127.0.0.1:%d" % cluster.api_port, PCCI_TOKEN=cluster.token)
    return cluster


def example(cluster, *args, timeout=120):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, args[0]), *args[1:]], capture_output=True,
                          text=True, env=cluster.env, timeout=timeout)


def test_healthcheck_writes_one_row_per_node_per_tick_into_sqlite(pis, tmp_path):
    wait_until(lambda: all(w["stats"] for w in pis.api("GET", "/workers")[1]["workers"]), what="heartbeats")
    db_path = str(tmp_path / "stats.sqlite3")
    result = example(pis, "healthcheck.py", "--db", db_path, "--interval", "0.2", "--ticks", "3")
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT node, online, cpu_percent, memory_percent FROM node_stats ORDER BY id").fetchall()
    db.close()
    assert len(rows) == 6 and sorted({r[0] for r in rows}) == ["pi1", "pi2"]
    assert all(r[1] == 1 and r[2] is not None and 0 < r[3] <= 100 for r in rows)


def test_healthcheck_as_a_schedule_is_added_once_and_its_pools_check_each_node(cluster):
    cluster.start_master(api_tokens=["example-token-" + "e" * 12], schedule_min_interval="1s")
    cluster.start_worker("pi1")
    cluster.env = dict(os.environ, PCCI_URL="http://127.0.0.1:%d" % cluster.api_port, PCCI_TOKEN=cluster.token)
    assert example(cluster, "healthcheck_schedule.py", "--when", "every 1s").stdout == "schedule healthcheck added\n"
    assert example(cluster, "healthcheck_schedule.py", "--when", "every 1s").stdout == \
        "schedule healthcheck unchanged\n"
    wait_until(lambda: (cluster.api("GET", "/schedules/healthcheck")[1]["lastRun"] or {}).get("outcome")
               == "succeeded", timeout=15, what="a passing health check")
    # A threshold every node is over: the next pools fail, saying why.
    assert example(cluster, "healthcheck_schedule.py", "--when", "every 1s", "--disk", "1").stdout == \
        "schedule healthcheck changed\n"
    wait_until(lambda: (cluster.api("GET", "/schedules/healthcheck")[1]["lastRun"] or {}).get("outcome")
               == "failed", timeout=15, what="a failing health check")
    pool_id = cluster.api("GET", "/schedules/healthcheck")[1]["lastRun"]["pool"]
    job = cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]["pi1"]
    assert job["exitCode"] == 1 and "root filesystem" in job["stdout"] and "(limit 1%)" in job["stdout"]


@pytest.fixture
def own_mariadb_server():
    """A MariaDB of this test's own, not the session's: the test stops and starts it."""
    with mariadb.throwaway() as server:
        server.sql("CREATE DATABASE pcci; CREATE USER 'pcci'@'127.0.0.1' IDENTIFIED BY 'secret'; "
                   "GRANT ALL ON pcci.* TO 'pcci'@'127.0.0.1';")
        yield server


def test_healthcheck_stores_into_innodb_and_keeps_rows_while_mariadb_is_down(pis, own_mariadb_server):
    mariadb_server = own_mariadb_server
    pytest.importorskip("pymysql")
    url = "mysql://pcci:secret@127.0.0.1:%d/pcci" % mariadb_server.port
    process = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "healthcheck.py"), "--db", url,
                                "--interval", "0.3"], env=pis.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        def count():
            result = mariadb_server.sql("SELECT COUNT(*) FROM pcci.node_stats", check=False)
            return int(result.stdout.strip()) if result.returncode == 0 else 0
        wait_until(lambda: count() >= 4, timeout=30, what="rows in MariaDB")
        mariadb_server.stop()
        time.sleep(1.5)                  # several ticks with the database down
        mariadb_server.start()
        time.sleep(1.0)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "database unavailable, keeping" in stderr
    engine = mariadb_server.sql("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_NAME = 'node_stats'")
    assert engine.stdout.strip() == "InnoDB"
    per_node = mariadb_server.sql("SELECT node, COUNT(*) FROM pcci.node_stats GROUP BY node").stdout.split("\n")
    counts = dict(line.split("\t") for line in per_node if line)
    # Every tick wrote both nodes, including the ticks while the server was down.
    assert set(counts) == {"pi1", "pi2"} and counts["pi1"] == counts["pi2"]
    ticks = stderr.count("stored ") + stderr.count("keeping")
    assert int(counts["pi1"]) >= 6 and ticks >= 6


def test_queue_runs_more_commands_than_workers_one_at_a_time_per_worker(pis):
    commands = ["sleep 0.3; echo job%d" % n for n in range(6)]
    result = example(pis, "queue.py", "--json", *commands)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["stdout"] for r in report] == ["job%d\n" % n for n in range(6)]
    assert {r["node"] for r in report} == {"pi1", "pi2"}
    for node in ("pi1", "pi2"):
        spans = sorted((r["startTime"], r["endTime"]) for r in report if r["node"] == node)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans
    assert "[6/6]" in result.stderr


def test_queue_exits_non_zero_and_reports_a_failed_command(pis):
    result = example(pis, "queue.py", "true", "echo broken >&2; exit 4", "true")
    assert result.returncode == 1
    assert "exit 4" in result.stdout and "broken" in result.stdout and "1 failed" in result.stderr


def test_queue_with_room_lets_an_idle_worker_take_a_second_job(pis):
    pis.workers["pi2"].stop()
    wait_until(lambda: [w["name"] for w in pis.api("GET", "/workers")[1]["workers"] if w["online"]] == ["pi1"],
               what="pi2 offline")
    wait_until(lambda: pis.api("GET", "/workers")[1]["workers"][0]["stats"], what="pi1 stats")
    result = example(pis, "queue.py", "--json", "--room", "--max-cpu", "100.1", "--max-mem", "100.1",
                     "sleep 0.5", "sleep 0.5")
    report = json.loads(result.stdout)
    (first_start, first_end), (second_start, _) = sorted((r["startTime"], r["endTime"]) for r in report)
    assert second_start < first_end      # both ran at once on pi1


def test_curl_script_runs_the_original_readme_calls(pis):
    result = subprocess.run([os.path.join(EXAMPLES, "curl.sh"), "pi1", "pi2"], capture_output=True, text=True,
                            env=pis.env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "hello from" in result.stdout and '"pi1": "signalled"' in result.stdout
    assert result.stderr.count("+ curl") == 6


# -- Prometheus and Grafana --------------------------------------------------------------

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def prometheus_query(port, expr):
    import urllib.parse
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr})),
                                timeout=10) as answer:
        return json.loads(answer.read())


def dashboard_queries():
    """Every PromQL expression of the Grafana dashboard, with Grafana's variables filled in
    as Grafana would for "all workers"."""
    with open(os.path.join(EXAMPLES, "grafana-dashboard.json")) as handle:
        dashboard = json.load(handle)
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":     # Grafana's label_values(METRIC, LABEL), as PromQL
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()
            queries.append("group by (%s) (%s)" % (label, metric))
    return [q.replace("$node", ".*").replace("$__rate_interval", "1m") for q in queries]


@pytest.mark.skipif(not (PROMETHEUS and PROMTOOL), reason="prometheus is not installed (./scripts/setup-deps)")
def test_prometheus_scrapes_the_master_with_the_example_config_and_every_panel_and_alert_evaluates(cluster, tmp_path):
    import yaml
    from conftest import free_port
    reader = "prometheus-token-" + "p" * 20
    cluster.start_master(api_tokens=["admin-token-" + "a" * 20, {"name": "prometheus", "scope": "read",
                                                                "token": reader}], schedule_min_interval="1s")
    cluster.start_worker("pi1", labels={"rack": "a"})
    cluster.start_worker("pi2", labels={"rack": "b"})
    cluster.run("true", ["pi1", "pi2"])
    assert cluster.api("POST", "/schedules", {"name": "tick", "when": "every 1s", "cmd": "true",
                                              "workers": "pi1"})[0] == 201

    # The example, pointed at this master: loopback is plain http, and a second between scrapes.
    with open(os.path.join(EXAMPLES, "prometheus.yml")) as handle:
        settings = yaml.safe_load(handle)
    (tmp_path / "pcci-token").write_text(reader + "\n")
    settings["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    settings["rule_files"] = [os.path.join(EXAMPLES, name) for name in settings["rule_files"]]
    job = settings["scrape_configs"][0]
    job["scheme"] = "http"
    del job["tls_config"]
    job["authorization"]["credentials_file"] = str(tmp_path / "pcci-token")
    job["static_configs"] = [{"targets": ["127.0.0.1:%d" % cluster.api_port]}]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(settings))
    check = subprocess.run([PROMTOOL, "check", "config", str(config_path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "SUCCESS: 7 rules found" in check.stdout, check.stdout + check.stderr

    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    server = subprocess.Popen([PROMETHEUS, "--config.file=%s" % config_path, "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                               "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=log)
    log.close()
    try:
        def scraped_up():
            try:
                answer = prometheus_query(port, 'up{job="pcci"}')
            except OSError:
                return False
            return [r for r in answer["data"]["result"] if r["value"][1] == "1"]
        wait_until(scraped_up, timeout=60, interval=0.5, what="Prometheus scraping the master")
        time.sleep(3)       # a few scrapes: rate() needs two samples

        for expr in dashboard_queries():
            answer = prometheus_query(port, expr)
            assert answer["status"] == "success", (expr, answer)
            # This machine has no temperature sensor, so that panel alone may stay empty.
            assert answer["data"]["result"] or "temperature" in expr, "the panel's query finds nothing: %s" % expr
        cpus = prometheus_query(port, "pcci_worker_cpu_percent")["data"]["result"]
        assert {(r["metric"]["node"], r["metric"]["label_rack"]) for r in cpus} == {("pi1", "a"), ("pi2", "b")}
        with open(os.path.join(EXAMPLES, "pcci-alerts.yml")) as handle:
            rules = [rule for group in yaml.safe_load(handle)["groups"] for rule in group["rules"]]
        for rule in rules:
            assert prometheus_query(port, rule["expr"])["status"] == "success", rule["expr"]

        # The schedule alert's metric is there, per schedule.
        wait_until(lambda: [r["metric"]["schedule"] for r in prometheus_query(
            port, "time() - pcci_schedule_last_success_timestamp < 60")["data"]["result"]] == ["tick"],
            timeout=20, interval=0.5, what="the schedule's last success in Prometheus")
        runs = prometheus_query(port, 'pcci_schedule_runs_total{outcome="succeeded"}')["data"]["result"]
        assert float(runs[0]["value"][1]) >= 1

        # The "worker offline" alert's expression finds a worker that stops.
        cluster.workers["pi2"].stop()
        wait_until(lambda: [r["metric"]["node"] for r in prometheus_query(port, "pcci_worker_online == 0")
                            ["data"]["result"]] == ["pi2"], timeout=20, interval=0.5, what="pi2 offline in Prometheus")
    finally:
        stop_process(server)
