"""Secrets in files: the cluster key file, the API tokens file, and a config file that
holds either. A file every user of the machine may read holds no secret, so it is
refused, saying how to make it private."""

import os
import stat

from . import api_tokens
from .auth import cluster_key
from .errors import ConfigError


def public_secret(handle, raw):
    """The problem with a config file every user may read that holds a secret, or None."""
    if not isinstance(raw, dict):
        return None
    key = "cluster_key" if raw.get("cluster_key") else "api_tokens" if raw.get("api_tokens") else None
    try:
        if key:
            refuse_if_public(handle, handle.name, key,
                              "it holds a secret: move it to %s_file, or" % key)
    except ConfigError as exc:
        return exc.problems[0]
    return None


def read_cluster_key(config):
    """The cluster key from the config or the file it names; ConfigError when there is none."""
    if config.cluster_key:
        return config.cluster_key
    if config.cluster_key_file:
        try:
            with open(config.cluster_key_file, encoding="utf-8") as handle:
                refuse_if_public(handle, config.source, "cluster_key_file")
                return cluster_key(handle.read())
        except OSError as exc:
            raise ConfigError(["%s: cluster_key_file: cannot read %s: %s"
                               % (config.source, config.cluster_key_file, exc.strerror)])
        except ValueError as exc:
            raise ConfigError(["%s: cluster_key_file: %s: %s" % (config.source, config.cluster_key_file, exc)])
    raise ConfigError(["%s: cluster_key: no cluster key; set cluster_key or cluster_key_file "
                       "(make one with 'pcci keygen')" % config.source])


def read_api_tokens(config):
    """ApiTokens from api_tokens plus those in api_tokens_file ('TOKEN [NAME [SCOPE]]' a line)."""
    tokens = list(config.api_tokens)
    if config.api_tokens_file:
        try:
            with open(config.api_tokens_file, encoding="utf-8") as handle:
                refuse_if_public(handle, config.source, "api_tokens_file")
                lines = handle.readlines()
        except OSError as exc:
            raise ConfigError(["%s: api_tokens_file: cannot read %s: %s"
                               % (config.source, config.api_tokens_file, exc.strerror)])
        try:
            tokens = api_tokens.check_unique(tokens + api_tokens.from_lines(lines))
        except ValueError as exc:
            raise ConfigError(["%s: api_tokens_file: %s: %s" % (config.source, config.api_tokens_file, exc)])
    return tokens


def refuse_if_public(handle, source, key, advice=""):
    """A secret that every user of the machine can read is no secret: refuse it, saying how to fix it."""
    mode = os.fstat(handle.fileno()).st_mode
    if mode & stat.S_IROTH:
        raise ConfigError(["%s: %s: %s is readable by every user (mode %04o); %smake it private: chmod o-rwx %s "
                           "(the Debian packages use 0640, owner root, group _pcci)"
                           % (source, key, handle.name, stat.S_IMODE(mode), advice + " " if advice else "",
                              handle.name)])
