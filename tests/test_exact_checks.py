"""Validators match the whole value: Python's ``$`` also matches before a trailing newline
and ``str.isdigit`` takes digits such as '²' that int() refuses, so each check here failed
open (or crashed with a 500) before it was an exact match."""

import json

import pytest

from pcci import api_tokens, config, host_port, store_url
from pcci.errors import ApiError
from pcci.master import event_log, validation
from pcci.master.store_mariadb import suspect_timeout
from pcci.targets import check_groups, check_labels


def job(**fields):
    return validation.job_request(json.dumps(dict({"cmd": "true"}, **fields)).encode(), 100)


def copy(**fields):
    body = dict({"dest": "/tmp/x", "content": "aGk="}, **fields)
    return validation.copy_request(json.dumps(body).encode(), 100, 1 << 20)


@pytest.mark.parametrize("name", ["root\n", "root\r\n", " root", "ro ot", "Root", "root\x00"])
def test_a_jobs_user_is_a_whole_user_name(name):
    with pytest.raises(ApiError) as caught:
        job(user=name)
    assert caught.value.code == "wrong_type"
    assert job(user="deploy").user == "deploy"


@pytest.mark.parametrize("owner", ["root\n", "root:\n", ":adm\n", "root:adm\n"])
def test_a_copys_owner_is_a_whole_user_and_group(owner):
    with pytest.raises(ApiError) as caught:
        copy(owner=owner)
    assert caught.value.code == "wrong_type"
    assert copy(owner="root:adm").copy.owner == "root:adm"


@pytest.mark.parametrize("batch", ["²%", "1²%", "٣%"])
def test_a_batch_percentage_is_ascii_digits_and_a_4xx_otherwise(batch):
    with pytest.raises(ApiError) as caught:
        job(batch=batch)
    assert caught.value.status == 400
    assert job(batch="25%").batch == "25%"


def test_config_user_names_are_whole_names():
    with pytest.raises(ValueError):
        config.user_names(["root\n"])
    with pytest.raises(ValueError):
        config.optional_user_name("deploy\n")
    assert config.user_names(["root", "deploy"]) == ["root", "deploy"]


def test_a_token_name_is_a_whole_name():
    with pytest.raises(ValueError):
        api_tokens.make_token("s" * 20, "alice\n", "read")
    assert api_tokens.make_token("s" * 20, "alice", "read").name == "alice"


def test_labels_and_group_names_are_whole_words():
    assert check_labels({"rack\n": "a"}) and check_labels({"rack": "a\n"})
    assert check_labels({"rack": "a"}) == []
    assert check_groups({"web\n": "pi1"}, 100) and check_groups({"web": "pi1"}, 100) == []


def test_a_store_database_name_is_a_whole_name():
    with pytest.raises(ValueError):
        store_url.parse("mariadb://pcci@db1/pcci\n")
    assert store_url.parse("mariadb://pcci@db1/pcci").database == "pcci"


@pytest.mark.parametrize("text", ["db1:²", "db1:٨٠", "[::1]:²"])
def test_a_port_is_ascii_digits(text):
    with pytest.raises(ValueError) as caught:
        host_port.parse(text, 3306)
    assert "HOST:PORT" in str(caught.value)


@pytest.mark.parametrize("text", ["²", "abcd-1²", "5\nx", "٣", "1 2"])
def test_an_event_id_is_ascii_digits_or_a_bad_cursor(text):
    with pytest.raises(event_log.BadCursor):
        event_log.parse_cursor(text)
    assert event_log.parse_cursor("abcd-12") == ("abcd", 12)


def test_durations_and_galera_timeouts_are_whole_values():
    with pytest.raises(ValueError):
        config.parse_duration("5s\nx")
    assert config.parse_duration("5s") == 5
    assert suspect_timeout("evs.suspect_timeout = PT5S\n") == 5     # strip() trims it: still read
    assert suspect_timeout("evs.suspect_timeout = PT5S\nx") is None


def test_a_master_refuses_a_user_name_with_a_trailing_newline(cluster):
    cluster.start_master()
    status, body = cluster.api("POST", "/job", {"cmd": "id", "user": "root\n"})
    assert status == 400 and body["error"]["code"] == "wrong_type"
    assert cluster.api("GET", "/pools")[1]["pools"] == []
