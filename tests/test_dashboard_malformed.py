"""The dashboard in a real browser when a worker's stats are malformed: every worker is
still listed. Two layers: the master keeps only documented stats (a hand-made worker
sends garbage), and the page renders defensively whatever it is given (the page's
JSON is altered in the browser, as an older master or a field nobody checked would
deliver it)."""

from browser import requires_browser
from conftest import wait_until
from raw_worker import RawWorker
from test_dashboard import driver, js, sign_in, url, wait_for, wait_view, worker_row  # noqa: F401 (fixture)

pytestmark = requires_browser

ADMIN = "admin-token-" + "w" * 24
TOKENS = [{"name": "admin", "scope": "admin", "token": ADMIN}]

# Installed before the page's own scripts: every JSON document the page reads (GET
# /workers, each event of GET /events) has worker pi2's fields replaced with garbage.
CORRUPT_PI2 = """
(() => {
  const garbage = (worker) => Object.assign(worker, {
    stats: {loadAverage: ["high", 1, 2], temperature: "hot", cpuPercent: {}, memory: 5,
            disk: {percent: "full"}, cpuCount: [], bootTime: "yesterday"},
    labels: {rack: {nested: 1}, "": null}, runningJobs: "p/x", queuedJobs: 7, lastHeartbeat: 12345,
    address: {ip: "10.0.0.2"}});
  const corrupt = (value) => {
    if (value && Array.isArray(value.workers)) value.workers.forEach((w) => w && w.name === "pi2" && garbage(w));
    else if (value && value.name === "pi2" && "online" in value) garbage(value);
    return value;
  };
  const parse = JSON.parse;
  JSON.parse = function (text, reviver) { return corrupt(parse.call(this, text, reviver)); };
  const json = Response.prototype.json;
  Response.prototype.json = async function () { return corrupt(await json.call(this)); };
})();
"""


def test_a_workers_malformed_stats_never_empty_the_workers_view(cluster, driver):  # noqa: F811
    cluster.start_master(api_tokens=TOKENS, heartbeat_timeout="120s")   # the hand-made worker beats once
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    fake = RawWorker(cluster.worker_port, "bad")
    try:
        fake.heartbeat('{"cpuPercent": 9, "loadAverage": ["high", 1, 2], "temperature": "hot", '
                       '"disk": {"path": "\\ud800", "percent": 200}}')
        cluster.wait_online("pi1", "pi2", "bad")
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CORRUPT_PI2})
        driver.get(url(cluster))
        sign_in(driver, ADMIN)
        wait_view(driver, "workers")
        wait_for(driver, "return document.querySelectorAll('#workers tbody tr').length === 3", what="three rows")
        assert js(driver, "return JSON.parse('{\"name\": \"pi2\", \"online\": true}').stats.temperature") == "hot"

        pi1 = wait_until_row(driver, "pi1", lambda row: row["CPU"].endswith("%") and row["Load"])
        assert pi1["State"] == "online" and pi1["Memory"].endswith("%")
        bad = wait_until_row(driver, "bad", lambda row: row["CPU"] == "9%")
        assert bad["State"] == "online" and bad["Load"] == "" and bad["Temp"] == "" and bad["Disk"] == ""
        # The garbage itself shows as nothing, or as plain text, never as an error.
        pi2 = wait_until_row(driver, "pi2", lambda row: row["State"] == "online")
        assert pi2["CPU"] == pi2["Memory"] == pi2["Disk"] == pi2["Temp"] == pi2["Load"] == ""
        assert pi2["Jobs"] == "0" and "rack=" in pi2["Labels"]
        # Still live: the view keeps updating every row (pi2's events are garbage too).
        cluster.workers["pi1"].stop()
        wait_until_row(driver, "pi1", lambda row: row["State"] == "offline", timeout=15)
        assert worker_row(driver, "pi2")["State"] == "online"
        assert js(driver, "return document.querySelector('#worker-summary').textContent").startswith("2 online")
        assert js(driver, "return document.querySelector('#error').hidden") is True
    finally:
        fake.close()


def wait_until_row(driver, name, predicate, timeout=20):
    """The worker's row (cells by heading) once it shows what ``predicate`` wants."""
    def shown():
        row = worker_row(driver, name)
        return row if row and predicate(row) else None
    return wait_until(shown, timeout=timeout, what="%s's row" % name)
