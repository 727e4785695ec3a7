"""The dashboard's Schedules view in a real browser (headless Chromium through Selenium)
against a real master and worker: next due, last outcome, enable and disable."""

import pytest

from browser import requires_browser
from conftest import wait_until
from test_dashboard import READER, click, driver, js, shots, sign_in, text_of, url, wait_for, wait_view  # noqa: F401

pytestmark = requires_browser

OPERATOR = "operator-token-" + "o" * 24
TOKENS = [{"name": "ops", "scope": "operate", "token": OPERATOR}, {"name": "viewer", "scope": "read", "token": READER}]


def row(driver, name):
    return js(driver, """
        const heads = [...document.querySelectorAll('#schedules thead th')].map(th => th.textContent);
        const row = document.querySelector('#schedules tbody tr[data-name="' + arguments[0] + '"]');
        if (!row) return null;
        return Object.fromEntries([...row.cells].map((cell, i) => [heads[i], cell.textContent]));""", name)


def test_schedules_show_next_due_and_last_outcome_and_switch_with_an_operate_token(cluster, driver, shots):
    cluster.start_master(api_tokens=TOKENS, schedule_min_interval="1s")
    cluster.start_worker("pi1")
    cluster.token = OPERATOR
    assert cluster.api("POST", "/schedules", {"name": "tick", "when": "every 1s", "cmd": "echo '<b>tick</b>'",
                                              "workers": "pi1"})[0] == 201
    wait_until(lambda: cluster.api("GET", "/schedules/tick")[1]["lastSuccess"], timeout=15, what="a success")
    driver.get(url(cluster, "#/schedules"))
    sign_in(driver, READER)
    wait_view(driver, "schedules")
    wait_for(driver, "return (document.querySelector('#schedules tr[data-name=tick]') || {}).textContent"
                     ".includes('succeeded')", what="the last run's outcome")
    shown = row(driver, "tick")
    assert shown["When"] == "every 1s" and shown["Command"] == "echo '<b>tick</b>'" and shown[""] == "Disable"
    assert shown["Next due"] and shown["Last success"]
    assert js(driver, "return document.querySelector('#schedules b')") is None      # text, never markup
    # A read token may look, not switch: the API's refusal is shown.
    click(driver, "#schedules button[data-name=tick]")
    wait_for(driver, "return !document.querySelector('#error').hidden", what="the refusal shown")
    assert "insufficient_scope, HTTP 403" in text_of(driver, "#error-text")
    assert cluster.api("GET", "/schedules/tick")[1]["enabled"] is True
    shots.take(driver, "schedules")

    click(driver, "#sign-out")
    sign_in(driver, OPERATOR)
    wait_view(driver, "schedules")
    click(driver, "#schedules button[data-name=tick]")
    wait_for(driver, "return (document.querySelector('#schedules tr[data-name=tick]') || {}).textContent"
                     ".includes('disabled')", what="shown disabled")
    assert cluster.api("GET", "/schedules/tick")[1]["enabled"] is False
    assert row(driver, "tick")[""] == "Enable"
    click(driver, "#schedules button[data-name=tick]")
    wait_for(driver, "return (document.querySelector('#schedules button[data-name=tick]') || {}).textContent "
                     "=== 'Disable'", what="enabled again")
    assert cluster.api("GET", "/schedules/tick")[1]["enabled"] is True
