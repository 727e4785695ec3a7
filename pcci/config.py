"""Master and worker configuration: one table of defaults, small validators, all errors at once.

A config file is a YAML mapping read with ``yaml.safe_load``. Unknown keys are rejected,
every bad value is named as ``file: key: message``, and the result is a plain
``Config`` whose attributes are the validated values.
"""

import math
import os
import re
import socket

from . import api_tokens, host_port
from .auth import cluster_key
from .errors import ConfigError
from .protocol import largest_output_cap, worst_case_result_bytes
from .secret_files import public_secret, read_api_tokens, read_cluster_key  # noqa: F401 (pcci.cli reads them here)
from .targets import check_groups, check_labels
from .tls import normalize_fingerprint
from .transient_imports import transient
from .user_names import USER_NAME

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value):
    """'90s', '24h', '7d', '500ms' or a bare number of seconds -> float seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 24h or 7d, got %r" % (value,))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value))
        if not match:
            raise ValueError("expected a duration like 90s, 24h or 7d, got %r" % (value,))
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError("expected a finite duration like 90s, 24h or 7d, got %r" % (value,))
    if seconds < 0:
        raise ValueError("must not be negative, got %r" % (value,))
    return seconds


def positive_duration(value):
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be greater than zero, got %r" % (value,))
    return seconds


def text(value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string, got %r" % (value,))
    return value


def optional_text(value):
    return None if value is None else text(value)


def port(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError("expected a port number from 0 to 65535, got %r" % (value,))
    return value


def positive_int(value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("expected a whole number greater than zero, got %r" % (value,))
    return value


def optional_positive_int(value):
    return None if value is None else positive_int(value)


def token_list(value):
    """api_tokens: a list of bare tokens or {name, scope, token} mappings (pcci/api_tokens.py)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("expected a list of tokens")
    return api_tokens.check_unique([api_tokens.from_config_entry(entry, n) for n, entry in enumerate(value)])


def name_list(value):
    if not isinstance(value, list) or not all(isinstance(n, str) and n.strip() and " " not in n for n in value):
        raise ValueError("expected a list of host names or addresses, got %r" % (value,))
    return list(value)


def log_level(value):
    levels = ("debug", "info", "warning", "error")
    if value not in levels:
        raise ValueError("expected one of %s, got %r" % (", ".join(levels), value))
    return value


def groups(value):
    """The master's named groups: a map of group names to target expressions."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expected a map of group names to target expressions, e.g. pis: \"pi[1-8]\"")
    problems = check_groups(value, limit=10 ** 6)
    if problems:
        raise ValueError("; ".join(problems))
    return {str(k): v for k, v in value.items()}


def user_names(value):
    """A list of user names (allowed_users)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and USER_NAME.fullmatch(v) for v in value):
        raise ValueError("expected a list of user names, e.g. [root, deploy], got %r" % (value,))
    return list(value)


def optional_user_name(value):
    if value is not None and not (isinstance(value, str) and USER_NAME.fullmatch(value)):
        raise ValueError("expected a user name, got %r" % (value,))
    return value


def labels(value):
    """A worker's labels: a map of names to values, e.g. model: pi4."""
    if value is None:
        return {}
    if isinstance(value, dict):
        # YAML reads rack: 1 as a number; a label is text either way.
        value = {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                 for k, v in value.items()}
    problems = check_labels(value)
    if problems:
        raise ValueError("; ".join(problems))
    return dict(value)


def networks(value):
    """A list of IP networks (10.0.0.0/8, 192.168.1.7, fd00::/8)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("expected a list of networks, e.g. [10.0.0.0/8, 192.168.1.7], got %r" % (value,))
    import ipaddress        # here: a worker, which has no networks to check, never loads it
    parsed = []
    for item in value:
        try:
            parsed.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ValueError("%r is not an IP network (10.0.0.0/8) or address" % (item,))
    return parsed


def master_list(value):
    """master_hosts: several masters, 'host' or 'host:port' each (master_port when no port)."""
    if value is None:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of masters, e.g. [pi-master1, pi-master2:7070], got %r" % (value,))
    parsed = []
    for item in value:
        host, port = host_port.parse(item, 0)
        parsed.append((host, port or None))
    return parsed


def optional_host_port(value):
    """relay_listen: null (off) or 'HOST:PORT' ('[v6]:PORT'), the address a worker's relay
    listener binds; port 0 takes any free port (the hello says which)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected HOST:PORT such as 0.0.0.0:7715, or null (off), got %r" % (value,))
    host, colon, number = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or " " in host or not number.isdigit() or int(number) > 65535:
        raise ValueError("%r is not HOST:PORT such as 0.0.0.0:7715 (a port from 0 to 65535)" % (value,))
    return host, int(number)


def relay_advertise(value):
    """relay_advertise: null, or 'HOST' / 'HOST:PORT' ('[v6]:PORT') where other workers dial
    this worker's relay listener (behind NAT, or with several interfaces): (host, port), port 0
    meaning the listener's own. HOST must be an IP address: a name would be resolved by each
    child when it dials, so whoever controls its DNS could aim every child at another host."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an IP address, or IP:PORT such as 192.168.1.7:7715, got %r" % (value,))
    host, port = host_port.parse(value, 0)
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        raise ValueError("%r is not an IP address (IP or IP:PORT; a DNS name is refused: each child would "
                         "resolve it when it dials)" % (host,))
    if packed[:12] == bytes(10) + b"\xff\xff":
        packed = packed[12:]        # ::ffff:0.0.0.0 is 0.0.0.0 to the master (and to a dual-stack dial)
    if not any(packed):
        raise ValueError("%s is the unspecified address, which no other worker can dial; give the address "
                         "they reach this worker at" % (host,))
    return host, port


def store_url(value):
    if value is None:
        return None
    from . import store_url as store_url_module     # here: urllib.parse is a master's
    store_url_module.parse(value)
    return value


def fingerprints(value):
    """master_fingerprint: one certificate fingerprint, or a list (one per master of master_hosts)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("expected a fingerprint (sha256:...) or a list of them")
    return [normalize_fingerprint(text(item)) for item in items]


# key: (default, validator). docs/configuration.md describes each key.
_COMMON = {
    "cluster_key": (None, cluster_key),
    "cluster_key_file": (None, optional_text),
    "state_dir": (None, text),
    "max_frame_bytes": (16 * 1024 * 1024, positive_int),
    "log_level": ("info", log_level),
}

MASTER_KEYS = dict(_COMMON, **{
    "state_dir": ("/var/lib/pcci-master", text),
    "api_host": ("127.0.0.1", text),
    "api_port": (8080, port),
    "api_tokens": ([], token_list),
    "api_tokens_file": (None, optional_text),
    "api_tls_cert": (None, optional_text),
    "api_tls_key": (None, optional_text),
    "max_body_bytes": (1024 * 1024, positive_int),
    "max_copy_bytes": (8 * 1024 * 1024 * 1024, positive_int),
    "copy_relay_fanout": (2, lambda v: _whole_number(v, 16)),
    "relay_networks": ([], networks),
    "api_idle_timeout": (60.0, positive_duration),
    "api_head_timeout": (10.0, positive_duration),
    "api_plain_http": (False, lambda v: _boolean(v)),
    "api_tls_names": ([], name_list),
    "api_max_connections": (1000, positive_int),
    "api_max_connections_per_address": (64, positive_int),
    "api_max_connections_per_prefix": (256, positive_int),
    "worker_host": ("0.0.0.0", text),
    "worker_port": (7070, port),
    "worker_tls": (True, lambda v: _boolean(v)),
    "worker_tls_cert": (None, optional_text),
    "worker_tls_key": (None, optional_text),
    "heartbeat_timeout": (15.0, positive_duration),
    "handshake_timeout": (10.0, positive_duration),
    "max_handshakes": (1000, positive_int),
    "max_handshakes_per_address": (64, positive_int),
    "max_handshakes_per_prefix": (256, positive_int),
    "max_handshakes_known": (1000, positive_int),
    "lost_after": (600.0, positive_duration),
    "pool_retention": (7 * 86400.0, positive_duration),
    "max_pools": (None, optional_positive_int),
    "kill_reply_timeout": (3.0, positive_duration),
    "max_pool_jobs": (20000, positive_int),
    "max_worker_backlog": (1000, positive_int),
    "groups": ({}, groups),
    "groups_file": (None, optional_text),
    "metrics_open_to": ([], networks),
    "store_url": (None, store_url),
    "store_password_file": (None, optional_text),
    "store_tls_ca": (None, optional_text),
    "master_name": (None, optional_text),
    "lease_time": (6.0, positive_duration),
    "advertise_api_url": (None, optional_text),
    "advertise_worker_address": (None, optional_text),
    "notify_allow": (None, lambda v: _notify_allow(v)),
    "notify_retry": (2.0, positive_duration),
    "notify_redirects": (0, lambda v: _whole_number(v, 5)),
    "notify_max_unsent": (4000, positive_int),
    "notify_max_unsent_per_token": (500, positive_int),
    "notify_tls_ca": (None, lambda v: _ca_file(v)),
    "max_schedules": (1000, positive_int),
    "schedule_grace": (60.0, positive_duration),
    "schedule_min_interval": (10.0, positive_duration),
})

WORKER_KEYS = dict(_COMMON, **{
    "state_dir": ("/var/lib/pcci-worker", text),
    "master_host": (None, optional_text),
    "master_port": (7070, port),
    "master_hosts": ([], master_list),
    "master_tls": (True, lambda v: _boolean(v)),
    "master_ca_file": (None, optional_text),
    "master_fingerprint": ([], fingerprints),
    "node_name": (None, optional_text),
    "shell": ("/bin/sh", text),
    "heartbeat_interval": (5.0, positive_duration),
    "link_timeout": (20.0, positive_duration),
    "output_cap_bytes": (1024 * 1024, positive_int),
    "kill_grace": (5.0, parse_duration),
    "reconnect_min": (0.5, positive_duration),
    "reconnect_max": (30.0, positive_duration),
    "max_jobs": (64, positive_int),
    "job_cgroups": ("auto", lambda v: _one_of(v, ("auto", "on", "off"))),
    "labels": ({}, labels),
    "allowed_users": ([], user_names),
    "default_user": (None, optional_user_name),
    "relay_listen": (None, optional_host_port),
    "relay_advertise": (None, relay_advertise),
})


def _one_of(value, choices):
    if value is True or value is False:
        # YAML reads a bare on/off as a boolean.
        value = "on" if value else "off"
    if value not in choices:
        raise ValueError("expected one of %s, got %r" % (", ".join(choices), value))
    return value


def _notify_allow(value):
    """notify_allow: URL prefixes and networks (pcci/master/notify_allow.py, imported here
    only when a config sets it: the worker never loads it)."""
    from .master.notify_allow import allow_list
    return allow_list(value)


def _ca_file(value):
    """A PEM file of CA certificates, loaded here so that check-config finds a bad one."""
    if value is None:
        return None
    if not isinstance(value, str) or not os.path.isabs(value):
        raise ValueError("expected the absolute path of a PEM file of CA certificates, got %r" % (value,))
    import ssl
    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError("%s: not a readable PEM file of CA certificates (%s)" % (value, exc))
    return value


def _whole_number(value, most):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise ValueError("expected a whole number from 0 to %d, got %r" % (most, value))
    return value


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError("expected true or false, got %r" % (value,))
    return value


class Config:
    """Validated settings, read-only; attribute names are the YAML keys."""

    def __init__(self, values, source):
        self.__dict__.update(values)
        self.__dict__["source"] = source

    def __setattr__(self, name, value):
        raise AttributeError("a validated config is not changed afterwards (tried to set %r)" % name)


def validate(raw, table, source):
    """Check a mapping against a key table; return a Config or raise ConfigError listing all problems."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["%s: expected a mapping of keys to values at the top level" % source])
    problems = []
    values = {}
    for key in sorted(set(raw) - set(table), key=str):
        problems.append("%s: %s: unknown key (known keys: %s)" % (source, key, ", ".join(sorted(table))))
    for key, (default, check) in table.items():
        if key not in raw:
            values[key] = default
            continue
        try:
            values[key] = check(raw[key])
        except ValueError as exc:
            problems.append("%s: %s: %s" % (source, key, exc))
    if not problems:
        # Combinations are checked once every key is valid on its own (a bad key has no value).
        problems.extend("%s: %s" % (source, p) for p in _cross_checks(values, table))
    if problems:
        raise ConfigError(problems)
    return Config(values, source)


def _cross_checks(values, table):
    if "api_tls_cert" in table and bool(values["api_tls_cert"]) != bool(values["api_tls_key"]):
        yield "api_tls_cert, api_tls_key: give both or neither"
    if "worker_tls_cert" in table and bool(values["worker_tls_cert"]) != bool(values["worker_tls_key"]):
        yield "worker_tls_cert, worker_tls_key: give both or neither"
    if "worker_tls" in table and not values["worker_tls"] and values["worker_tls_cert"]:
        yield "worker_tls, worker_tls_cert: worker_tls is false, so the certificate would not be used"
    if "master_tls" in table and not values["master_tls"] and (values["master_ca_file"] or values["master_fingerprint"]):
        yield "master_tls, master_ca_file, master_fingerprint: master_tls is false, so nothing would be checked"
    if "master_hosts" in table and values["master_hosts"] and values["master_host"]:
        yield "master_host, master_hosts: give one, not both (master_hosts lists every master)"
    if "store_url" in table and not values["store_url"] and (values["store_password_file"] or values["store_tls_ca"]):
        yield "store_password_file, store_tls_ca: they only apply with store_url (MariaDB)"
    if "schedule_min_interval" in table and not 1 <= values["schedule_min_interval"] <= 60:
        yield "schedule_min_interval: must be 1s to 60s (a cron expression's step is a minute)"
    if "notify_max_unsent" in table and values["notify_max_unsent_per_token"] >= values["notify_max_unsent"]:
        yield ("notify_max_unsent_per_token: must be less than notify_max_unsent, or one token could fill the "
               "outbox for everyone")
    if "lease_time" in table and values["lease_time"] < 2:
        yield "lease_time: must be at least 2s (renewals are a quarter of it apart)"
    if values.get("cluster_key") and values.get("cluster_key_file"):
        yield "cluster_key, cluster_key_file: give one, not both"
    if "relay_advertise" in table and values["relay_advertise"] and not values["relay_listen"]:
        yield "relay_advertise: only applies with relay_listen (this worker serves no relays without it)"
    if "reconnect_max" in table and values["reconnect_max"] < values["reconnect_min"]:
        yield "reconnect_max: must not be less than reconnect_min"
    if "output_cap_bytes" in table and worst_case_result_bytes(values["output_cap_bytes"]) > values["max_frame_bytes"]:
        yield ("output_cap_bytes, max_frame_bytes: a result may hold 2 x %d bytes of output, which can take "
               "%d bytes as JSON (a control byte is 6 characters), over max_frame_bytes %d; lower "
               "output_cap_bytes to %d or raise max_frame_bytes on the worker and the master"
               % (values["output_cap_bytes"], worst_case_result_bytes(values["output_cap_bytes"]),
                  values["max_frame_bytes"], largest_output_cap(values["max_frame_bytes"])))


# The key table of each kind of config file.
TABLES = {"master": MASTER_KEYS, "worker": WORKER_KEYS}


def load(path, kind):
    """Read and validate one YAML file, a ``kind`` ("master" or "worker") of config. A file
    that holds a secret (cluster_key, api_tokens) must not be readable by every user; that is
    reported with any other problem."""
    import yaml     # here: a worker reads its file with it and then lets it go (``transient``)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
            public = public_secret(handle, raw)
    except OSError as exc:
        raise ConfigError(["%s: cannot read: %s" % (path, exc.strerror)])
    except yaml.YAMLError as exc:
        raise ConfigError(["%s: not valid YAML: %s" % (path, str(exc).replace("\n", " "))])
    try:
        config = validate(raw, TABLES[kind], path)
    except ConfigError as exc:
        raise ConfigError(exc.problems + ([public] if public else []))
    if public:
        raise ConfigError([public])
    return config


def load_and_let_go(path, kind):
    """load(), for a service that has no more use for PyYAML once its file is read: the
    modules it imported are let go again (``transient_imports``)."""
    with transient(("yaml", "datetime"), refused=("yaml._yaml",)):
        return load(path, kind)


def load_master(path):
    """load(path, "master"), for callers from before it took a kind."""
    return load(path, "master")


def load_worker(path):
    """load(path, "worker"), for callers from before it took a kind."""
    return load(path, "worker")


def default_node_name():
    return socket.gethostname().split(".")[0]
