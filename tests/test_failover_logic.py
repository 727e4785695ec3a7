"""The pure parts of failover: which master a worker dials next and after how long, how
long a master may act on its lease, store_url and master_hosts as the config takes them."""

import pytest

from pcci import config, store_url
from pcci.errors import ConfigError
from pcci.master.lease import LeaseTerm
from pcci.host_port import parse as parse_master
from pcci.worker.backoff import STANDBY_ROUND_CAP_SECONDS, MasterRotation

A, B, C = ("m1", 7070), ("m2", 7070), ("m3", 7071)


def test_a_round_tries_each_master_a_moment_apart_then_backs_off_growing():
    rotation = MasterRotation([A, B, C], base=0.5, cap=30)
    delays = []
    for _ in range(9):
        delays.append((rotation.current, rotation.after(False, 0.999)))
    assert [master for master, _ in delays[:3]] == [A, B, C]
    assert all(delay < 0.5 for _, delay in delays[:2])                    # within a round: a moment
    round_ends = [delay for _, delay in delays[2::3]]
    assert round_ends == sorted(round_ends) and round_ends[0] < round_ends[-1] <= 30


def test_not_leader_sends_the_next_dial_to_the_named_active_master():
    rotation = MasterRotation([A, B, C], base=0.5, cap=30)
    delay = rotation.after(False, 0.5, not_leader=True, leader="m3:7071")
    assert rotation.current == C and delay < 0.5


def test_a_standby_naming_a_master_that_just_failed_is_kept_and_retried_soon():
    """The active master died: the standby still names it until the lease runs out. The
    worker stays with the live standby, retrying after a short round, not the long backoff."""
    rotation = MasterRotation([A, B], base=0.5, cap=30)
    for _ in range(8):                      # a long run of failures grows the backoff...
        rotation.after(False, 0.999)
    assert rotation.current == A
    rotation.after(False, 0.999)            # A (the old active) does not answer
    delay = rotation.after(False, 0.999, not_leader=True, leader="m1:7070")
    assert rotation.current == B            # ...the standby B is tried again,
    assert delay <= STANDBY_ROUND_CAP_SECONDS     # soon: it takes over within a lease


def test_one_master_is_the_plain_backoff_and_a_long_session_resets_it():
    rotation = MasterRotation([A], base=0.5, cap=8)
    delays = [rotation.after(False, 0.999) for _ in range(6)]
    assert delays == sorted(delays) and delays[-1] == pytest.approx(8 * 0.999)
    assert rotation.after(True, 0.999) <= 0.5 and rotation.current == A


def test_short_first_waits_do_not_raise_the_ceiling_far_past_the_outage():
    """A worker whose first draws were short has waited little: its next wait stays within
    twice that, not a ceiling that doubled with each attempt (30 s after a 3 s restart)."""
    rotation = MasterRotation([A], base=0.5, cap=30)
    waited = sum(rotation.after(False, 0.0) for _ in range(10))     # ten short draws: 2.5 s
    assert waited == pytest.approx(2.5)
    assert rotation.after(False, 0.999) <= 2 * waited
    long_outage = MasterRotation([A], base=0.5, cap=30)
    assert max(long_outage.after(False, 0.999) for _ in range(20)) == pytest.approx(30 * 0.999)


def test_hints_outside_the_list_or_malformed_are_not_followed():
    rotation = MasterRotation([A, B], base=0.5, cap=30)
    rotation.after(False, 0.5, not_leader=True, leader="attacker:7070")
    assert rotation.current == A            # a forged hint cannot send a worker elsewhere
    rotation = MasterRotation([A, B], base=0.5, cap=30)
    rotation.after(False, 0.5, not_leader=True, leader="[::1")
    assert rotation.current == A


def test_the_lease_term_ends_a_margin_before_the_database_expiry():
    term = LeaseTerm(6.0)
    assert not term.holds(0.0) and term.renew_every == 1.5
    term.renewed(100.0)
    assert term.holds(104.9) and not term.holds(105.0)          # 6 s lease, 1 s margin
    assert term.left(103.0) == pytest.approx(2.0) and term.left(200.0) == 0.0
    assert LeaseTerm(2.0).margin == pytest.approx(0.4)


@pytest.mark.parametrize("text, expected", [
    ("m1", ("m1", 7070)), ("m1:7071", ("m1", 7071)), ("10.0.0.5:9", ("10.0.0.5", 9)),
    ("[fd00::1]:7072", ("fd00::1", 7072)), ("[fd00::1]", ("fd00::1", 7070))])
def test_master_addresses(text, expected):
    assert parse_master(text, 7070) == expected


@pytest.mark.parametrize("text", ["", "m1:", "m1:99999", "m1:x", ":7070", "[::1", "[::1]7070", "[::1]:"])
def test_bad_master_addresses(text):
    with pytest.raises(ValueError):
        parse_master(text, 7070)


def test_store_url_takes_several_hosts_and_never_a_password():
    target = store_url.parse("mariadb://pcci@db1,db2:3307,[fd00::3]/pcci")
    assert target == ("pcci", [("db1", 3306), ("db2", 3307), ("fd00::3", 3306)], "pcci")
    for bad, why in [("postgres://u@h/d", "scheme"), ("mariadb://u:pw@h/d", "store_password_file"),
                     ("mariadb://h/d", "user"), ("mariadb://u@h", "DATABASE"), ("mariadb://u@h/d-x", "DATABASE"),
                     ("mariadb://u@h:0/d", "port from 1"), ("mariadb://u@h h/d", "HOST")]:
        with pytest.raises(ValueError, match=why):
            store_url.parse(bad)


def test_config_checks_the_high_availability_keys_together():
    master = config.validate({"store_url": "mariadb://pcci@db1,db2/pcci", "lease_time": "8s"}, config.MASTER_KEYS,
                             "m.yaml")
    assert master.lease_time == 8.0 and master.store_url.startswith("mariadb://")
    with pytest.raises(ConfigError, match="store_url: put the password in store_password_file"):
        config.validate({"store_url": "mysql://root:pw@h/d"}, config.MASTER_KEYS, "m.yaml")
    with pytest.raises(ConfigError) as problems:
        config.validate({"store_password_file": "/x", "lease_time": "1s"}, config.MASTER_KEYS, "m.yaml")
    text = "\n".join(problems.value.problems)
    assert "they only apply with store_url" in text and "lease_time: must be at least 2s" in text
    worker = config.validate({"master_hosts": ["m1", "m2:7071"]}, config.WORKER_KEYS, "w.yaml")
    assert worker.master_hosts == [("m1", None), ("m2", 7071)]
    with pytest.raises(ConfigError, match="give one, not both"):
        config.validate({"master_hosts": ["m1"], "master_host": "m1"}, config.WORKER_KEYS, "w.yaml")
    with pytest.raises(ConfigError, match="master_hosts"):
        config.validate({"master_hosts": "m1"}, config.WORKER_KEYS, "w.yaml")
    # A bad key alongside a combination check: the key's own message, no crash.
    with pytest.raises(ConfigError, match="reconnect_min: "):
        config.validate({"reconnect_min": "soon", "reconnect_max": "1s"}, config.WORKER_KEYS, "w.yaml")


def test_galera_failure_detection_is_read_from_the_provider_options():
    from pcci.master.store_mariadb import suspect_timeout
    options = "base_port = 4567; evs.inactive_timeout = PT15S; evs.suspect_timeout = PT5S; gcache.size = 128M"
    assert suspect_timeout(options) == 5.0
    assert suspect_timeout("evs.suspect_timeout=PT1.5S") == 1.5
    assert suspect_timeout("evs.suspect_timeout = PT1M30S") == 90.0
    assert suspect_timeout("gcache.size = 128M") is None and suspect_timeout("evs.suspect_timeout = P1D") is None
