"""What a service's start keeps out of memory: the CLI's parser (``pcci.cli.services``),
PyYAML once the config is read (``pcci.transient_imports``), urllib.parse for the spool's
file names (``pcci.worker.spool``), and that none of it changes what it does."""

import json
import subprocess
import sys
from urllib.parse import quote, unquote

import pytest

from conftest import KEY, REPO
from pcci.cli.services import config_path
from pcci.worker.spool import file_name, job_id_of


@pytest.mark.parametrize("arguments, path", [
    (["--config", "/etc/pcci/worker.yaml"], "/etc/pcci/worker.yaml"),
    (["--config=/etc/pcci/worker.yaml"], "/etc/pcci/worker.yaml"),
    (["--config"], None), (["--config="], None), (["--help"], None), ([], None),
    (["--config", "--help"], None), (["--config", "a.yaml", "--verbose"], None), (["--confi", "a.yaml"], None),
])
def test_only_the_units_form_of_the_arguments_skips_the_clis_parser(arguments, path):
    assert config_path(arguments) == path


@pytest.mark.process
def test_a_service_asked_for_help_gets_the_clis_answer():
    result = subprocess.run([sys.executable, "-m", "pcci", "worker", "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0 and "--config CONFIG" in result.stdout
    result = subprocess.run([sys.executable, "-m", "pcci", "worker", "--config"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 2 and "expected one argument" in result.stderr


@pytest.mark.parametrize("job_id", ["p1/n1", "20261205-abc/pi[1]", "pool/nœud é", "p/中文🙂", "p/%41 *?~._-", ""])
def test_spool_file_names_are_the_ones_urllib_made_so_an_older_spool_is_still_found(job_id):
    assert file_name(job_id) == quote(job_id, safe="") + ".json"
    assert job_id_of(file_name(job_id)) == job_id


@pytest.mark.parametrize("name", ["a%zz", "b%4", "c%41%", "d%e2%82", "e%E2%82%AC"])
def test_a_damaged_spool_file_name_still_reads_as_urllib_reads_it(name):
    assert job_id_of(name + ".json") == unquote(name)


def run_python(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                          check=True)
    return json.loads(done.stdout)


def test_a_worker_config_is_read_and_pyyaml_is_let_go(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("master_host: 10.0.0.1\nnode_name: pi7\nlabels: {rack: a1}\ncluster_key: %s\n" % KEY)
    path.chmod(0o600)
    found = run_python(
        "import json, sys\n"
        "from pcci import config\n"
        "cfg = config.load_and_let_go(%r, 'worker')\n"
        "print(json.dumps({'node': cfg.node_name, 'labels': cfg.labels,\n"
        "                  'left': sorted(n for n in sys.modules if n.startswith(('yaml', 'datetime')))}))" % str(path))
    assert found == {"node": "pi7", "labels": {"rack": "a1"}, "left": []}


def test_a_bad_file_is_reported_as_before_when_pyyaml_is_let_go(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("master_host: [unclosed\n")
    path.chmod(0o600)
    found = run_python(
        "import json, sys\n"
        "from pcci import config\n"
        "from pcci.errors import ConfigError\n"
        "try:\n"
        "    config.load_and_let_go(%r, 'worker')\n"
        "except ConfigError as exc:\n"
        "    left = sorted(n for n in sys.modules if n.startswith('yaml'))\n"
        "    print(json.dumps({'problems': exc.problems, 'left': left}))" % str(path))
    assert len(found["problems"]) == 1 and "not valid YAML" in found["problems"][0]
    assert found["left"] == []


def test_a_process_that_had_pyyaml_keeps_it():
    found = run_python(
        "import json, sys, yaml\n"
        "from pcci.transient_imports import transient\n"
        "with transient(('yaml',), refused=('yaml._yaml',)):\n"
        "    import yaml.cyaml\n"
        "extension = sys.modules.get('yaml._yaml')\n"
        "print(json.dumps([yaml.__with_libyaml__, extension is not None, 'yaml' in sys.modules]))")
    assert found == [True, True, True]
