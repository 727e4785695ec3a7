import pytest

from pcci import auth, config
from pcci.errors import ConfigError


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("24h", 86400), ("7d", 604800), ("500ms", 0.5),
                                          (30, 30), ("1.5m", 90), ("2w", 1209600)])
def test_durations_in_the_original_style(text, seconds):
    assert config.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["7 days", "-1s", "", True, "h"])
def test_bad_durations_are_named(bad):
    with pytest.raises(ValueError):
        config.parse_duration(bad)


def test_defaults_fill_missing_keys():
    cfg = config.validate({"cluster_key": auth.new_key()}, config.MASTER_KEYS, "m.yaml")
    assert cfg.api_port == 8080 and cfg.pool_retention == 7 * 86400 and cfg.api_host == "127.0.0.1"


def test_every_problem_is_reported_at_once_as_file_key_message():
    with pytest.raises(ConfigError) as caught:
        config.validate({"api_port": "eighty", "pool_retention": "forever", "colour": "blue"},
                        config.MASTER_KEYS, "/etc/pcci/master.yaml")
    problems = caught.value.problems
    assert len(problems) == 3
    assert any(p.startswith("/etc/pcci/master.yaml: colour: unknown key") for p in problems)
    assert any(p.startswith("/etc/pcci/master.yaml: api_port: expected a port") for p in problems)
    assert any(p.startswith("/etc/pcci/master.yaml: pool_retention: expected a duration") for p in problems)


def test_yaml_tags_are_not_executed(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("api_port: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_master(str(path))


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load_worker(str(path))


def test_cluster_key_from_a_key_file(tmp_path):
    key_file = tmp_path / "cluster.key"
    key = auth.new_key()
    key_file.write_text(key + "\n")
    key_file.chmod(0o640)
    cfg = config.validate({"cluster_key_file": str(key_file)}, config.WORKER_KEYS, "w.yaml")
    assert config.read_cluster_key(cfg) == key


@pytest.mark.parametrize("key", ["cluster_key_file", "api_tokens_file"])
def test_a_key_or_token_file_every_user_can_read_is_refused_with_the_fix(tmp_path, key):
    secret = tmp_path / "secret"
    secret_text = auth.new_key()
    secret.write_text(secret_text + "\n")
    secret.chmod(0o644)
    cfg = config.validate({key: str(secret)}, config.MASTER_KEYS, "m.yaml")
    read = config.read_cluster_key if key == "cluster_key_file" else config.read_api_tokens
    with pytest.raises(ConfigError, match=r"readable by every user \(mode 0644\); make it private: chmod o-rwx"):
        read(cfg)
    secret.chmod(0o600)
    found = read(cfg)
    assert found == secret_text if key == "cluster_key_file" else [t.secret for t in found] == [secret_text]


def test_missing_cluster_key_says_how_to_make_one():
    cfg = config.validate({}, config.WORKER_KEYS, "w.yaml")
    with pytest.raises(ConfigError, match="pcci keygen"):
        config.read_cluster_key(cfg)


def test_tls_needs_both_cert_and_key():
    with pytest.raises(ConfigError, match="give both or neither"):
        config.validate({"api_tls_cert": "/c.pem"}, config.MASTER_KEYS, "m.yaml")


def test_a_weak_cluster_key_is_refused_in_the_config_and_in_its_file(tmp_path):
    with pytest.raises(ConfigError, match="cluster_key: the cluster key has at most .* bits of randomness.*pcci keygen"):
        config.validate({"cluster_key": "k" * 64}, config.WORKER_KEYS, "w.yaml")
    key_file = tmp_path / "cluster.key"
    key_file.write_text("0123456789abcdef" * 4 + "\n")
    key_file.chmod(0o600)
    cfg = config.validate({"cluster_key_file": str(key_file)}, config.WORKER_KEYS, "w.yaml")
    with pytest.raises(ConfigError, match="cluster_key_file: .*fewer than 256"):
        config.read_cluster_key(cfg)


def test_the_worker_link_is_tls_unless_turned_off_and_a_pin_is_a_fingerprint():
    assert config.validate({}, config.MASTER_KEYS, "m.yaml").worker_tls is True
    assert config.validate({}, config.WORKER_KEYS, "w.yaml").master_tls is True
    pinned = config.validate({"master_fingerprint": "AB:" * 31 + "AB"}, config.WORKER_KEYS, "w.yaml")
    assert pinned.master_fingerprint == ["sha256:" + "ab" * 32]
    several = config.validate({"master_fingerprint": ["ab" * 32, "sha256:" + "cd" * 32]}, config.WORKER_KEYS, "w.yaml")
    assert several.master_fingerprint == ["sha256:" + "ab" * 32, "sha256:" + "cd" * 32]
    with pytest.raises(ConfigError, match="master_fingerprint: expected a SHA-256 fingerprint"):
        config.validate({"master_fingerprint": "abc"}, config.WORKER_KEYS, "w.yaml")
    with pytest.raises(ConfigError, match="master_tls is false, so nothing would be checked"):
        config.validate({"master_tls": False, "master_fingerprint": "ab" * 32}, config.WORKER_KEYS, "w.yaml")


def test_notify_tls_ca_must_be_a_pem_file_of_certificates(tmp_path):
    from pcci import tls
    cert, key = str(tmp_path / "ca.crt"), str(tmp_path / "ca.key")
    tls.ensure_certificate(cert, key, "hooks-ca")
    assert config.validate({"notify_tls_ca": cert}, config.MASTER_KEYS, "m.yaml").notify_tls_ca == cert
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for bad, says in (("ca.crt", "absolute path"), (str(tmp_path / "missing.pem"), "not a readable PEM file"),
                      (str(tmp_path / "junk.pem"), "not a readable PEM file")):
        with pytest.raises(ConfigError) as caught:
            config.validate({"notify_tls_ca": bad}, config.MASTER_KEYS, "m.yaml")
        assert caught.value.problems[0].startswith("m.yaml: notify_tls_ca: ") and says in caught.value.problems[0]


def test_one_tokens_outbox_cap_must_be_below_the_total():
    cfg = config.validate({}, config.MASTER_KEYS, "m.yaml")
    assert (cfg.notify_max_unsent_per_token, cfg.notify_max_unsent) == (500, 4000)
    with pytest.raises(ConfigError, match="notify_max_unsent_per_token: must be less than notify_max_unsent"):
        config.validate({"notify_max_unsent": 100, "notify_max_unsent_per_token": 100}, config.MASTER_KEYS, "m.yaml")


def test_a_relay_advertise_is_an_ip_address_with_an_optional_port_and_needs_relay_listen():
    listen = {"relay_listen": "0.0.0.0:7715"}
    check = lambda value: config.validate(dict(listen, relay_advertise=value), config.WORKER_KEYS, "w.yaml")
    assert check("192.168.1.7").relay_advertise == ("192.168.1.7", 0)          # 0: the listener's port
    assert check("203.0.113.9:17715").relay_advertise == ("203.0.113.9", 17715)
    assert check("[fd00::7]:7715").relay_advertise == ("fd00::7", 7715)
    assert check("fd00::7").relay_advertise == ("fd00::7", 0)
    assert config.validate(listen, config.WORKER_KEYS, "w.yaml").relay_advertise is None
    for bad, says in (("pi1.example.org", "not an IP address"), ("0.0.0.0", "the unspecified address"),
                      ("::", "the unspecified address"), ("::ffff:0.0.0.0", "the unspecified address"),
                      ("[::ffff:0.0.0.0]:7715", "the unspecified address"), ("10.0.0.1:0", "a port from 1 to 65535"),
                      ("10.0.0.1:70000", "a port from 1 to 65535"), (7715, "expected an IP address"),
                      ("10.0.0.256", "not an IP address")):
        with pytest.raises(ConfigError) as caught:
            check(bad)
        assert len(caught.value.problems) == 1, caught.value.problems
        assert caught.value.problems[0].startswith("w.yaml: relay_advertise: ") and says in caught.value.problems[0]
        assert "\n" not in caught.value.problems[0]
    with pytest.raises(ConfigError, match="relay_advertise: only applies with relay_listen"):
        config.validate({"relay_advertise": "192.168.1.7"}, config.WORKER_KEYS, "w.yaml")


def test_relay_networks_are_a_list_of_networks_none_by_default():
    assert config.validate({}, config.MASTER_KEYS, "m.yaml").relay_networks == []
    cfg = config.validate({"relay_networks": ["10.0.0.0/8", "192.168.1.7"]}, config.MASTER_KEYS, "m.yaml")
    assert [str(network) for network in cfg.relay_networks] == ["10.0.0.0/8", "192.168.1.7/32"]
    with pytest.raises(ConfigError, match=r"m.yaml: relay_networks: 'pis\.lan' is not an IP network"):
        config.validate({"relay_networks": ["pis.lan"]}, config.MASTER_KEYS, "m.yaml")
