"""The same fan-out with the tools PCCI users would otherwise run: pdsh, clush, Ansible.

Each runs `true` on N targets executed locally (pdsh -R exec, clush -R exec, Ansible
with connection=local), so only the tool's own overhead is measured, as for PCCI's
local workers. Used by bench/fanout.py --peers.
"""

import os
import shutil
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSIBLE = os.path.join(REPO, ".venv-ansible", "bin", "ansible")


def _timed(command, env=None):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=600)
    return time.perf_counter() - started


def pdsh(count):
    if not shutil.which("pdsh"):
        return None
    return _timed(["pdsh", "-R", "exec", "-w", "t[1-%d]" % count, "true"])


def clush(count):
    if not shutil.which("clush"):
        return None
    return _timed(["clush", "-R", "exec", "-w", "t[1-%d]" % count, "true"])


def ansible(count):
    if not os.path.exists(ANSIBLE):
        return None
    with tempfile.TemporaryDirectory() as base:
        inventory = os.path.join(base, "hosts")
        with open(inventory, "w") as handle:
            handle.write("[all]\n" + "".join("t%d ansible_connection=local\n" % n for n in range(1, count + 1)))
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
                   ANSIBLE_LOCAL_TEMP=os.path.join(base, "tmp"))
        return _timed([ANSIBLE, "all", "-i", inventory, "-m", "command", "-a", "true"], env=env)


PEERS = (("pdsh", pdsh), ("clush", clush), ("ansible", ansible))
