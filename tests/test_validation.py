import pytest

from pcci.errors import ApiError
from pcci.master import validation as requests
from pcci.model import CopySpec


def test_original_job_body_is_accepted_and_names_its_workers_as_given():
    parsed = requests.job_request(b'{"cmd": "ping google.com -n 1", "workers": ["node1", "node[2]"]}', 100)
    assert parsed.cmd == "ping google.com -n 1" and parsed.listed is True
    assert [(t.include, t.kind, t.value) for t in parsed.terms] == [(True, "names", ["node1", "node[2]"])]
    assert parsed.target == {"workers": ["node1", "node[2]"], "exclude": None}


@pytest.mark.parametrize("workers", [None, "*", ["*"]])
def test_star_or_no_workers_means_every_online_worker(workers):
    body = {"cmd": "true"} if workers is None else {"cmd": "true", "workers": workers}
    import json
    terms = requests.job_request(json.dumps(body).encode(), 100).terms
    assert [(t.include, t.kind) for t in terms] == [(True, "all")]


def test_a_string_is_a_target_expression_and_exclude_leaves_out():
    parsed = requests.job_request(b'{"cmd": "x", "workers": "node[1-3],@pis model=pi4", "exclude": "node2"}', 100)
    assert parsed.listed is False
    assert [(t.include, t.kind, t.value) for t in parsed.terms] == [
        (True, "range", "node[1-3]"), (True, "group", "pis"), (True, "label", ("model", "pi4")),
        (False, "names", ["node2"])]


@pytest.mark.parametrize("workers, where", [("node[1-", "'node[1-' at character 1"), ("a, !", "'!' at character 4"),
                                           ("x=", "'x=' at character 1"),
                                           ("n[0-9999999999999999999999]", "more than 18 digits"),
                                           ("n[1-2]" * 200, "more than 8 ranges")])
def test_a_malformed_expression_is_a_400_that_points_at_the_term(workers, where):
    import json
    with pytest.raises(ApiError) as caught:
        requests.job_request(json.dumps({"cmd": "x", "workers": workers}).encode(), 100)
    assert caught.value.code == "bad_target" and where in caught.value.message


@pytest.mark.parametrize("workers, exclude, code, says", [
    ("n[1-500]", None, "pool_too_large", "stands for up to 500 workers"),
    ("n[1-60],m[1-41]", None, "pool_too_large", "stands for up to 101 workers"),
    (["w%d" % n for n in range(101)], None, "pool_too_large", "lists 101 workers"),
    ("*", "n[1-101]", "bad_target", "excludes up to 101 workers"),
    ("*,!n[1-60]", "m[1-41]", "bad_target", "excludes up to 101 workers"),
    ("*", ["w%d" % n for n in range(101)], "bad_target", "lists 101 workers"),
])
def test_a_target_over_max_pool_jobs_is_refused_before_it_is_expanded(workers, exclude, code, says):
    import json
    with pytest.raises(ApiError) as caught:
        requests.job_request(json.dumps({"cmd": "x", "workers": workers, "exclude": exclude}).encode(), 100)
    assert caught.value.code == code and says in caught.value.message, caught.value.message


@pytest.mark.parametrize("body,code", [
    (b"", "empty_body"),
    (b"{", "malformed_json"),
    (b"[1]", "wrong_type"),
    (b'{"cmd": 5}', "wrong_type"),
    (b'{"cmd": "  "}', "empty_cmd"),
    (b'{"cmd": "x", "workers": 5}', "wrong_type"),
    (b'{"cmd": "x", "exclude": {"a": 1}}', "wrong_type"),
    (b'{"cmd": "x", "batch": ""}', "wrong_type"),
    (b'{"cmd": "x", "batch": "x%"}', "wrong_type"),
    (b'{"cmd": "x", "batch": "101%"}', "out_of_range"),
    (b'{"cmd": "x", "batch": 0}', "out_of_range"),
    (b'{"cmd": "x", "batch": true}', "wrong_type"),
    (b'{"cmd": "x", "maxFailures": -1}', "out_of_range"),
    (b'{"cmd": "x", "maxFailures": 1.5}', "wrong_type"),
    (b'{"cmd": "x", "offline": "wait"}', "wrong_type"),
    (b'{"cmd": "x", "queueTimeout": 5}', "wrong_type"),
    (b'{"cmd": "x", "offline": "queue", "queueTimeout": 0}', "out_of_range"),
    (b'{"cmd": "x", "user": "Root User"}', "wrong_type"),
    (b'{"cmd": "x", "user": 0}', "wrong_type"),
    (b'{"cmd": "x", "workers": ["a", "a"]}', "duplicate_worker"),
    (b'{"cmd": "x", "timeout": -1}', "out_of_range"),
    (b'{"cmd": "x", "timeout": true}', "wrong_type"),
    (b'{"cmd": "x", "env": {"A": 1}}', "wrong_type"),
    (b'{"cmd": "x", "cmd2": 1}', "unknown_field"),
    (b"\xff\xfe", "malformed_json"),
    (b'{"cmd": "x", "timeout": 1e400}', "malformed_json"),
    (b'{"cmd": "x", "timeout": NaN}', "malformed_json"),
    (b'{"cmd": "x", "timeout": Infinity}', "malformed_json"),
    (b'{"cmd": "x", "timeout": 1e12}', "out_of_range"),
    (b'{"cmd": "x\\ud800"}', "unencodable_text"),
    (b'{"cmd": "x", "workers": ["x\\ud800"]}', "unencodable_text"),
    (b'{"cmd": "x", "env": {"A": "\\udfff"}}', "unencodable_text"),
    (b'{"cmd": "x", "env": {"\\ud800": "1"}}', "unencodable_text"),
    (b'{"cmd": "x", "cwd": "/tmp/\\ud800"}', "unencodable_text"),
])
def test_bad_job_bodies_name_the_problem(body, code):
    with pytest.raises(ApiError) as caught:
        requests.job_request(body, 100)
    assert caught.value.code == code and caught.value.status == 400


def test_kill_body_is_optional():
    assert requests.kill_request(b"") == {"workers": []}
    assert requests.kill_request(b'{"workers": ["n1"]}') == {"workers": ["n1"]}


def test_query_numbers_are_checked():
    assert requests.wait_seconds({"wait": "2.5"}) == 2.5
    with pytest.raises(ApiError):
        requests.wait_seconds({"wait": "soon"})
    with pytest.raises(ApiError):
        requests.pools_query({"status": "weird"})
    for bad in ("nan", "inf", "-1", "1e400"):
        with pytest.raises(ApiError):
            requests.wait_seconds({"wait": bad})
    assert requests.pools_query({"limit": "10"})["limit"] == 10


@pytest.mark.parametrize("body", [b'{"cmd": "echo a\\u0000b"}', b'{"cmd": "x", "env": {"A\\u0000": "1"}}',
                                  b'{"cmd": "x", "env": {"A": "1\\u0000"}}', b'{"cmd": "x", "cwd": "/tmp\\u0000"}'])
def test_nul_bytes_are_refused_before_they_reach_a_worker(body):
    with pytest.raises(ApiError) as caught:
        requests.job_request(body, 100)
    assert caught.value.code == "nul_byte"


def test_absurdly_nested_json_is_a_bad_request_not_a_crash():
    with pytest.raises(ApiError) as caught:
        requests.job_request(b"[" * 100000 + b"]" * 100000, 100)
    assert caught.value.code == "malformed_json"


@pytest.mark.parametrize("body, code", [
    ({"dest": "relative", "content": ""}, "wrong_type"),
    ({"dest": "/x", "content": "not base64!"}, "wrong_type"),
    ({"dest": "/x", "content": "eA==", "mode": "999"}, "wrong_type"),
    ({"dest": "/x", "content": "eA==", "mode": True}, "wrong_type"),
    ({"dest": "/x", "content": "eA==", "owner": "root:wheel:x"}, "wrong_type"),
    ({"dest": "/x", "content": "eA==", "batch": "50%%%"}, "wrong_type"),
    ({"dest": "/x", "content": "eHh4eA=="}, "payload_too_large"),
    ({"dest": "/x", "content": "eA==", "cmd": "x"}, "unknown_field"),
])
def test_bad_copy_bodies_name_the_problem(body, code):
    import json
    with pytest.raises(ApiError) as caught:
        requests.copy_request(json.dumps(body).encode(), 100, max_file_bytes=3)
    assert caught.value.code == code, caught.value.message


def test_a_copy_body_is_checked_and_described():
    import json
    parsed = requests.copy_request(json.dumps({"dest": "/etc/motd", "content": "aGk=", "mode": "0640",
                                               "owner": "root:adm", "workers": "pi[1-2]"}).encode(), 100, 1000)
    assert parsed.copy == CopySpec(dest="/etc/motd", content="aGk=", mode=0o640, owner="root:adm", size=2,
                                   sha256="8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4")
    assert parsed.cmd == "copy to /etc/motd (2 bytes)"


def test_a_copy_may_be_asked_to_go_direct_and_relay_takes_only_a_boolean():
    import json
    body = {"dest": "/srv/image.bin", "sha256": "ab" * 32, "workers": "pi[1-4]"}
    assert requests.copy_request(json.dumps(body).encode(), 100, 1000).copy.relay is True
    direct = requests.copy_request(json.dumps(dict(body, relay=False)).encode(), 100, 1000).copy
    assert direct.relay is False
    assert CopySpec.from_json(direct.to_json()) == direct            # stored with its pool
    assert "relay" not in CopySpec.from_json(dict(direct.to_json(), relay=True)).to_json()
    assert requests.copy_request(json.dumps(dict(body, relay=None)).encode(), 100, 1000).copy.relay is True
    for bad in ("no", 0, 1, "false", {"off": True}):
        with pytest.raises(ApiError) as caught:
            requests.copy_request(json.dumps(dict(body, relay=bad)).encode(), 100, 1000)
        assert (caught.value.status, caught.value.code) == (400, "wrong_type") and "'relay'" in caught.value.message
