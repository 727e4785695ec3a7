"""The master's named groups: ``groups`` in master.yaml and those of ``groups_file``, a
YAML map of group names to target expressions (the Ansible role writes one from its
inventory), read at start and again on SIGHUP, so a group changes without a restart."""

from typing import Dict

import yaml

from .. import config as config_module
from ..errors import ConfigError


def read_groups(config) -> Dict[str, str]:
    """Every group, or ConfigError naming the file and what is wrong with it."""
    groups = dict(config.groups)
    if not config.groups_file:
        return groups
    where = "%s: groups_file: %s" % (config.source, config.groups_file)
    try:
        with open(config.groups_file, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(["%s: cannot read it: %s" % (where, exc.strerror)])
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(["%s: not YAML: %s" % (where, str(exc).replace("\n", " "))])
    try:
        from_file = config_module.groups(loaded if loaded is not None else {})
    except ValueError as exc:
        raise ConfigError(["%s: %s" % (where, exc)])
    both = sorted(set(groups) & set(from_file))
    if both:
        raise ConfigError(["%s: %s defined in %s too; define each group once" % (where, ", ".join(both),
                                                                                 config.source)])
    groups.update(from_file)
    return groups
