"""Every configuration key is documented and appears in the example files, which validate."""

import os

import pytest
import yaml

from pcci import config
from conftest import REPO


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("table", [config.MASTER_KEYS, config.WORKER_KEYS], ids=["master", "worker"])
def test_every_key_is_in_docs_configuration(table):
    text = read("docs", "configuration.md")
    assert [key for key in table if "`%s`" % key not in text] == []


@pytest.mark.parametrize("kind,table", [("master", config.MASTER_KEYS), ("worker", config.WORKER_KEYS)])
def test_example_config_is_valid_and_lists_every_key(kind, table):
    path = os.path.join(REPO, "conf", "%s.yaml" % kind)
    text = read("conf", "%s.yaml" % kind)
    config.load(path, kind)
    raw = yaml.safe_load(text)
    assert [key for key in table if key not in raw and "# %s:" % key not in text] == []


def test_every_api_error_code_is_in_docs_api_with_its_status():
    from pcci import errors
    text = read("docs", "api.md")
    missing = [e.code for e in errors.ALL if "| %d | `%s` |" % (e.status, e.code) not in text]
    assert missing == []


def test_every_state_and_kill_outcome_is_in_docs_api():
    from pcci.states import JobState, KillOutcome
    text = read("docs", "api.md")
    assert [v.value for v in list(JobState) + list(KillOutcome) if "| `%s` |" % v.value not in text] == []


def test_every_route_is_in_docs_api():
    import re
    from pcci.master.openapi import SPEC
    documented = set(re.findall(r"^## (GET|POST|PUT|DELETE) (\S+)$", read("docs", "api.md"), re.M))
    served = {(method.upper(), path.replace("{pool_id}", "ID")) for path, methods in SPEC["paths"].items()
              for method in methods}
    assert documented == served


def test_one_version_everywhere():
    """pcci/__init__.py is the one source: the package's changelog, pcci --version and the
    man pages' headers agree with it."""
    import subprocess
    import sys
    from pcci import __version__
    changelog = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(REPO, "debian", "changelog"), "-S",
                                "Version"], capture_output=True, text=True, check=True).stdout.strip()
    assert changelog == __version__
    shown = subprocess.run([sys.executable, "-m", "pcci", "--version"], capture_output=True, text=True, cwd=REPO,
                           env=dict(os.environ, PYTHONPATH=REPO))
    assert shown.stdout.strip() == "pcci " + __version__
    for page in ("pcci.1", "pcci-master.1", "pcci-worker.1"):
        header = next(line for line in read("debian", "man", page).splitlines() if line.startswith(".TH "))
        assert '"pcci %s"' % __version__ in header, page


def test_the_license_is_the_one_debian_copyright_names():
    license_text = " ".join(read("LICENSE").split())
    copyright_text = read("debian", "copyright")
    assert "License: Expat" in copyright_text and "License: MIT" not in copyright_text
    granted = " ".join(line.strip() for line in copyright_text.split("License: Expat\n", 2)[2].splitlines()
                       if line.strip() != ".")
    assert granted in license_text
