"""scripts/build-repo with its defaults, as `make repo` runs it: a signed repository whose
InRelease verifies against the keyring it publishes, and no gpg-agent left behind."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(not shutil.which("apt-ftparchive") or not shutil.which("gpgv"),
                                reason="needs apt-utils and gpgv (./scripts/setup-deps installs them)")


def tiny_deb(directory):
    """A real (empty) Architecture: all package, so apt-ftparchive indexes something."""
    root = directory / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: pcci-repo-test\nVersion: 1.0\nArchitecture: all\n"
                                              "Maintainer: PCCI <pcci@example.org>\nDescription: test\n")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(directory / "dist" / "t.deb")],
                   check=True, capture_output=True, timeout=60)


def agents_for(home):
    """PIDs of gpg-agents serving this key home (its sockets live under it or are named from it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"gpg-agent" and str(home).encode() in b" ".join(argv):
            found.append(int(pid))
    return found


def test_make_repo_with_its_defaults_signs_a_repository_and_stops_its_agent(tmp_path):
    # A checkout of our own: the default key home is ./.pcci-repo-key inside it.
    checkout = tmp_path / "checkout"
    shutil.copytree(os.path.join(REPO, "scripts"), checkout / "scripts")
    (checkout / "dist").mkdir(parents=True)
    tiny_deb(checkout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PCCI_REPO_")}
    built = subprocess.run(["make", "-f", os.path.join(REPO, "Makefile"), "repo"], cwd=checkout, env=env,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    repo, home = checkout / "dist" / "repo", checkout / ".pcci-repo-key"
    assert (home / "pubring.kbx").exists() and oct(home.stat().st_mode & 0o777) == "0o700"
    assert (repo / "pool" / "main" / "t.deb").exists()
    verified = subprocess.run(["gpgv", "--keyring", str(repo / "pcci-archive-keyring.gpg"),
                               str(repo / "dists" / "stable" / "InRelease")], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
    assert "pcci-repo-test" in (repo / "dists" / "stable" / "main" / "binary-arm64" / "Packages").read_text()
    assert agents_for(home) == []
    # A second run keeps the key (Pis trust it) and signs again.
    key = (repo / "pcci-archive-keyring.gpg").read_bytes()
    again = subprocess.run(["make", "-f", os.path.join(REPO, "Makefile"), "repo"], cwd=checkout, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (repo / "pcci-archive-keyring.gpg").read_bytes() == key
    assert agents_for(home) == []
