"""The dashboard for failures at scale, in a real browser (headless Chromium) against a
real master and workers: a pool's failed jobs alone and their output on the first screen,
the run form's options, copying a file, rows that say "unknown" while the page's event
stream is down, and the pools list on a phone."""

import getpass
import hashlib

import browser
from browser import requires_browser
from conftest import wait_until
from test_dashboard import click, driver, js, shots, text_of, url, wait_for, wait_view, worker_row  # noqa: F401

pytestmark = requires_browser

FAILED_STATES = {"failed", "timed_out", "killed", "lost", "offline", "unknown_worker", "skipped"}
GHOSTS = ["ghost%d" % n for n in range(1, 31)]


def top_in_viewport(driver, selector):
    """The element's top edge, when it is on the screen as it is scrolled now; else None."""
    return js(driver, """
        const e = document.querySelector(arguments[0]);
        if (!e) return null;
        const top = e.getBoundingClientRect().top;
        return top >= 0 && top < window.innerHeight ? top : null;""", selector)


def shown_rows(driver):
    return js(driver, "return [...document.querySelectorAll('#jobs tbody tr')].filter(r => !r.hidden)"
                      ".map(r => [r.dataset.worker, r.dataset.state])")


def test_failed_only_shows_every_failed_job_and_a_row_links_to_its_output_on_the_first_screen(cluster, driver, shots):
    cluster.start_master()
    for name in ("pi1", "pi2", "pi3"):
        cluster.start_worker(name)
    # 33 jobs: one fails, two succeed, 30 never ran (unknown workers): more rows than a screen holds.
    pool = cluster.run('[ "${PCCI_JOB_ID##*/}" = pi1 ] && { echo "disk full on pi1" >&2; exit 3; }; echo fine',
                       ["pi1", "pi2", "pi3"] + GHOSTS)
    assert pool["states"] == {"failed": 1, "succeeded": 2, "unknown_worker": 30}
    assert driver.get_window_size()["width"] == 1280
    driver.get(url(cluster, "#/pool/" + pool["id"]))
    wait_view(driver, "pool")
    assert js(driver, "return window.innerHeight") <= 900
    assert len(shown_rows(driver)) == 33
    # Above the fold: the output starts on the first screen, however many jobs there are.
    assert top_in_viewport(driver, "#outputs section.output") is not None
    assert top_in_viewport(driver, "#outputs section.output pre:not([hidden])") is not None

    click(driver, "#failed-only")
    rows = shown_rows(driver)
    assert {name for name, _ in rows} == {"pi1"} | set(GHOSTS)
    assert {state for _, state in rows} <= FAILED_STATES
    assert text_of(driver, "#failed-count") == "(31)"
    shown_outputs = js(driver, "return [...document.querySelectorAll('#outputs section')].filter(s => !s.hidden)"
                               ".map(s => s.querySelector('h3').textContent)")
    assert sorted(shown_outputs) == ["ghost[1-30] (unknown worker)", "pi1 (exit 3)"]
    assert "failed=1" in driver.current_url

    # pi1's row links to its output, which comes on screen, marked.
    click(driver, "#jobs tr[data-worker=pi1] a.to-output")
    wait_for(driver, "return document.querySelector('#outputs section.target')", what="pi1's output marked")
    assert text_of(driver, "#outputs section.target h3") == "pi1 (exit 3)"
    assert text_of(driver, "#outputs section.target pre.stderr") == "disk full on pi1\n"
    assert top_in_viewport(driver, "#outputs section.target") is not None
    assert js(driver, "return document.activeElement.classList.contains('target')")
    assert driver.current_url.endswith("?failed=1&output=pi1")
    shots.take(driver, "pool-failed")

    # The link's URL opens the pool the same way.
    driver.refresh()
    wait_view(driver, "pool")
    assert js(driver, "return document.querySelector('#failed-only').checked")
    assert len(shown_rows(driver)) == 31
    assert text_of(driver, "#outputs section.target h3") == "pi1 (exit 3)"
    assert top_in_viewport(driver, "#outputs section.target") is not None

    # Every state short of success counts as failed: timed out, skipped, offline too.
    cluster.workers["pi3"].stop()
    wait_until(lambda: not [w for w in cluster.api("GET", "/workers")[1]["workers"] if w["name"] == "pi3"][0]["online"],
               what="pi3 offline")
    other = cluster.run("sleep 30", ["pi1", "pi2", "pi3"], batch=1, maxFailures=0, timeout=0.5)
    assert other["states"] == {"timed_out": 1, "skipped": 1, "offline": 1}, other["states"]
    driver.get(url(cluster, "#/pool/%s?failed=1" % other["id"]))
    wait_view(driver, "pool")
    assert sorted(state for _, state in shown_rows(driver)) == ["offline", "skipped", "timed_out"]


def test_the_run_form_sends_batch_max_failures_user_environment_and_timeout(cluster, driver):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    driver.get(url(cluster, "#/run"))
    wait_view(driver, "run")
    driver.find_element("id", "cmd").send_keys('echo "$GREETING from $(id -un)"; exit 1')
    driver.find_element("id", "target").send_keys("pi[1-2]")
    driver.find_element("id", "batch").send_keys("1")
    driver.find_element("id", "max-failures").send_keys("0")
    driver.find_element("id", "timeout").send_keys("30")
    driver.find_element("id", "user").send_keys(getpass.getuser())
    env = driver.find_element("id", "env")
    env.send_keys("no equals sign")
    click(driver, "#check")
    wait_for(driver, "return !document.querySelector('#run').disabled", what="run enabled")
    click(driver, "#run")
    wait_for(driver, "return !document.querySelector('#error').hidden", what="the bad line named")
    assert text_of(driver, "#error-text") == 'Environment, line 1: write NAME=VALUE (got "no equals sign")'
    assert cluster.api("GET", "/pools")[1]["pools"] == []
    env.clear()
    env.send_keys("GREETING=hello world")
    click(driver, "#run")
    wait_view(driver, "pool")
    pool_id = driver.current_url.rsplit("/", 1)[1]
    wait_for(driver, "return document.body.dataset.poolDone === arguments[0] || "
                     "document.querySelector('#pool-actions #kill-pool').hidden", 30, "pool done", pool_id)
    pool = cluster.api("GET", "/pool/%s?wait=30" % pool_id)[1]
    assert pool["rollout"]["batch"] == 1 and pool["rollout"]["maxFailures"] == 0
    assert pool["env"] == {"GREETING": "hello world"} and pool["timeout"] == 30
    assert pool["jobs"]["pi1"]["state"] == "failed" and pool["jobs"]["pi2"]["state"] == "skipped"
    assert pool["jobs"]["pi1"]["stdout"] == "hello world from %s\n" % getpass.getuser()
    wait_for(driver, "return document.querySelector('#jobs tr[data-worker=pi2]').dataset.state === 'skipped'",
             what="pi2 shown skipped")


def test_a_file_copied_from_the_dashboard_lands_on_every_target_and_too_big_a_one_is_refused(cluster, driver,
                                                                                             tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    source = tmp_path / "motd"
    source.write_bytes(b"welcome\x00\xff binary too\n" * 100)
    dest = tmp_path / "copied-motd"
    driver.get(url(cluster))
    wait_view(driver, "workers")
    click(driver, "nav a[data-view=copy]")
    wait_view(driver, "copy")
    driver.find_element("id", "copy-file").send_keys(str(source))
    driver.find_element("id", "dest").send_keys(str(dest))
    driver.find_element("id", "mode").send_keys("0640")
    driver.find_element("id", "target").send_keys("pi1")
    click(driver, "#check")
    wait_for(driver, "return !document.querySelector('#copy').disabled", what="copy enabled")
    assert text_of(driver, "#copy") == "Copy to 1 worker(s)"
    click(driver, "#copy")
    wait_view(driver, "pool")
    pool_id = driver.current_url.rsplit("/", 1)[1]
    pool = cluster.api("GET", "/pool/%s?wait=30" % pool_id)[1]
    assert pool["jobs"]["pi1"]["state"] == "succeeded", pool
    assert dest.read_bytes() == source.read_bytes()
    assert oct(dest.stat().st_mode & 0o777) == "0o640"
    assert pool["copy"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()

    # Beyond what the master takes in one request: its own refusal, word for word.
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024))
    driver.get(url(cluster, "#/copy"))
    wait_view(driver, "copy")
    driver.find_element("id", "copy-file").send_keys(str(big))
    driver.find_element("id", "dest").send_keys(str(tmp_path / "big-copy"))
    driver.find_element("id", "target").send_keys("pi1")
    click(driver, "#check")
    wait_for(driver, "return !document.querySelector('#copy').disabled", what="copy enabled")
    click(driver, "#copy")
    wait_for(driver, "return !document.querySelector('#error').hidden", what="the refusal shown")
    assert "payload_too_large, HTTP 413" in text_of(driver, "#error-text")
    assert not (tmp_path / "big-copy").exists()
    assert js(driver, "return document.body.dataset.view") == "copy"


def test_rows_go_unknown_while_the_pages_stream_is_down_and_back_to_their_real_state(cluster, driver):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 120", "workers": ["pi1"]})
    cluster.wait_running(submitted["id"], "pi1")
    driver.get(url(cluster))
    wait_view(driver, "workers")
    wait_until(lambda: (worker_row(driver, "pi2") or {}).get("State") == "online", what="pi2 online")
    workers_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(url(cluster, "#/pool/" + submitted["id"]))
    wait_view(driver, "pool")
    wait_for(driver, "return document.querySelector('#jobs tr[data-worker=pi1]').dataset.state === 'running'",
             what="pi1 running")
    pool_tab = driver.current_window_handle
    try:
        cluster.master.stop()
        wait_for(driver, "return document.querySelector('#jobs tr[data-worker=pi1]').dataset.state === 'unknown'",
                 what="the running job shown unknown")
        driver.switch_to.window(workers_tab)
        for name in ("pi1", "pi2"):
            wait_until(lambda: worker_row(driver, name)["State"] == "unknown", what="%s unknown" % name)
        assert text_of(driver, "#live") == "reconnecting"
        assert "state unknown" in text_of(driver, "#worker-summary")
        cluster.workers["pi2"].stop()        # gone meanwhile: not "online" once the page knows again
        cluster.master.start()
        wait_until(lambda: worker_row(driver, "pi1")["State"] == "online", timeout=30, what="pi1 online again")
        wait_until(lambda: worker_row(driver, "pi2")["State"] == "offline", timeout=30, what="pi2 offline")
        assert text_of(driver, "#live").startswith("live")
        driver.switch_to.window(pool_tab)
        wait_for(driver, "return document.querySelector('#jobs tr[data-worker=pi1]').dataset.state === 'running'",
                 30, "the job running again")
    finally:
        cluster.api("PUT", "/kill/" + submitted["id"], {})


def test_the_pools_badges_stay_on_one_line_on_a_phone(cluster, shots):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.run("true", ["pi1", "ghost1"])
    cluster.run("sleep 30", ["pi1"], timeout=0.5)
    cluster.run("echo a long command line that takes room " * 4, ["pi1"])
    phone = browser.start(size=browser.PHONE)
    try:
        phone.get(url(cluster, "#/pools"))
        wait_view(phone, "pools")
        assert js(phone, "return window.innerWidth") == 390
        badges = js(phone, """
            return [...document.querySelectorAll('#pools .badge')].map(b => {
              const style = getComputedStyle(b);
              return [b.textContent, b.getBoundingClientRect().height, parseFloat(style.lineHeight),
                      parseFloat(style.paddingTop) + parseFloat(style.paddingBottom)
                      + parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth)];
            })""")
        assert {text for text, *_ in badges} >= {"1 succeeded", "1 unknown worker", "1 timed out"}
        for text, height, line, extra in badges:
            assert height <= line + extra + 1, (text, height, line)      # one line: a word per line is 3 or more
        assert js(phone, "return document.documentElement.scrollWidth <= window.innerWidth")
        # The Jobs column fits the screen: the table does not scroll sideways to show it.
        assert js(phone, "const w = document.querySelector('#pools').parentNode; return w.scrollWidth <= w.clientWidth")
        shots.take(phone, "phone-pools")
    finally:
        phone.quit()
