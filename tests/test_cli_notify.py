"""`pcci run --notify`, `pcci copy --notify` and the Python client's ``notify`` against a real
master and receiver."""

from conftest import wait_until
from test_cli import pcci
from test_notify_restart import receiver  # noqa: F401 (the fixture)


def test_pcci_run_and_copy_ask_for_signed_notifications(cluster, receiver, tmp_path):  # noqa: F811
    cluster.start_master(api_tokens=["cli-token-" + "n" * 16], notify_allow=["127.0.0.0/8"], notify_retry="1s")
    cluster.start_worker("pi1")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    secret = tmp_path / "hook-secret"
    secret.write_text("cli-secret-0123456789\n")
    receiver.accept.set()
    ran = pcci("run", "-w", "pi1", "--notify", receiver.url, "--notify-on", "done,failed", "--notify-secret-file",
               str(secret), "--", "exit 5", env=env)
    assert ran.returncode == 5, ran.stderr
    wait_until(lambda: len(receiver.got) == 1, timeout=20, what="the run's notification")
    (delivery, body), = receiver.got
    assert body["event"] == "failed" and body["pool"]["exitCode"] == 5
    source = tmp_path / "motd"
    source.write_text("hello\n")
    copied = pcci("copy", str(source), "-w", "pi1", "--dest", str(tmp_path / "out"), "--notify", receiver.url,
                  "--notify-on", "done", env=env)
    assert copied.returncode == 0, copied.stderr
    wait_until(lambda: len(receiver.got) == 2, timeout=20, what="the copy's notification")
    assert receiver.got[1][1]["event"] == "done"

    from pcci.client import Master
    master = Master("http://127.0.0.1:%d" % cluster.api_port, cluster.token)
    pool = master.run("true", "pi1", notify=[{"url": receiver.url, "on": ["done"]}]).wait(timeout=30)
    wait_until(lambda: len(receiver.got) == 3, timeout=20, what="the Python client's notification")
    assert receiver.got[2][1]["pool"]["id"] == pool.id
    assert wait_until(lambda: master.pool(pool.id).data["notifications"][0]["state"] == "sent", timeout=10,
                      what="recorded as sent")


def test_pcci_run_says_why_a_notification_is_refused(cluster):
    cluster.start_master(api_tokens=["cli-token-" + "n" * 16], notify_allow=["https://hooks.example/services/"])
    cluster.start_worker("pi1")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port, "PCCI_TOKEN": cluster.token}
    ran = pcci("run", "-w", "pi1", "--notify", "http://169.254.169.254/latest/", "--", "true", env=env)
    assert ran.returncode == 1, ran
    assert "169.254.169.254 is a link-local address that no network in notify_allow names" in ran.stderr
