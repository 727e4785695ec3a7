"""The .debs on the machines the project is for: Raspberry Pi OS is Debian bookworm on
arm64 (Pi 3, 4, 5) or armhf (older Pis, 32-bit images). Each runs here as a booted
container of that architecture under qemu-user emulation (Debian's qemu-user-static),
beside an amd64 master container: the worker installs, registers, runs a job and reports
its stats. Slow under emulation: the images are built once and cached (docs/performance.md
says how long it takes); PCCI_SKIP_EMULATED=1 leaves it out of a quick run."""

import os

import pytest

import nspawn
from conftest import wait_until

SKIP = nspawn.emulation_supported() or ("PCCI_SKIP_EMULATED is set" if os.environ.get("PCCI_SKIP_EMULATED") else None)
pytestmark = [pytest.mark.skipif(SKIP is not None, reason="emulated Pis: %s" % SKIP),
              pytest.mark.container, pytest.mark.root, pytest.mark.slow]

ARCHES = ("arm64", "armhf")
# What a worker needs, and no more: every package is unpacked and configured under emulation.
PI_PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-gevent,python3-bottle,python3-psutil,python3-yaml,procps"
MACHINE = {"arm64": "aarch64", "armhf": "armv7l"}


def test_a_worker_on_emulated_arm64_and_armhf_pis_registers_runs_a_job_and_reports_its_stats(tmp_path_factory):
    base = tmp_path_factory.mktemp("emulated")
    debs = nspawn.build_debs(str(base / "debs"))
    with nspawn.emulation(ARCHES):
        images = {arch: nspawn.golden_image("bookworm", PI_PACKAGES, arch) for arch in ARCHES}
        (base / "bed").mkdir()
        testbed = nspawn.Testbed(str(base / "bed"))
        try:
            master = testbed.host("master", nspawn.golden_image("bookworm"), [(debs, "/debs")])
            master.sh("dpkg -i /debs/python3-pcci_*.deb /debs/pcci-master_*.deb")
            master.sh("sed -i 's/^api_host: .*/api_host: 0.0.0.0/' /etc/pcci/master.yaml && "
                      "systemctl restart pcci-master")
            key = master.sh("cat /etc/pcci/cluster.key").stdout
            token = [line for line in master.sh("cat /etc/pcci/api-tokens").stdout.splitlines()
                     if line and not line.startswith("#")][0].split()[0]
            pis = {}
            for arch in ARCHES:
                pi = pis[arch] = testbed.host("pi-" + arch, images[arch], [(debs, "/debs")], boot_timeout=300)
                assert pi.sh("dpkg --print-architecture").stdout.strip() == arch
                pi.sh("dpkg -i /debs/python3-pcci_*.deb /debs/pcci-worker_*.deb", timeout=600)
                pi.sh("umask 027; cat > /etc/pcci/cluster.key; chown root:_pcci /etc/pcci/cluster.key", stdin=key)
                pi.sh("sed -i 's/^master_host: .*/master_host: %s/' /etc/pcci/worker.yaml && "
                      "systemctl restart pcci-worker" % master.address, timeout=300)
            cacert = str(base / "api.crt")
            wait_until(lambda: "BEGIN CERTIFICATE" in master.sh("cat /var/lib/pcci-master/tls/api.crt",
                                                                  check=False).stdout, timeout=60, what="api.crt")
            with open(cacert, "w") as handle:
                handle.write(master.sh("cat /var/lib/pcci-master/tls/api.crt").stdout)

            def api(method, path, body=None):
                return testbed.api(master.address, method, path, token, body, cacert=cacert)

            def online():
                status, answer = api("GET", "/workers")
                return status == 200 and sorted(w["name"] for w in answer["workers"] if w["online"] and w["stats"])
            wait_until(lambda: online() == ["pi-arm64", "pi-armhf"], timeout=240, interval=1,
                       what="both emulated Pis online with their stats")

            status, submitted = api("POST", "/job", {"cmd": "uname -m; dpkg --print-architecture",
                                                     "workers": ["pi-arm64", "pi-armhf"]})
            assert status == 202, submitted
            status, pool = api("GET", "/pool/%s?wait=240" % submitted["id"])
            assert pool["status"] == "done", pool
            for arch in ARCHES:
                job = pool["jobs"]["pi-" + arch]
                assert (job["state"], job["stdout"]) == ("succeeded", "%s\n%s\n" % (MACHINE[arch], arch)), job

            workers = {w["name"]: w for w in api("GET", "/workers")[1]["workers"]}
            for arch in ARCHES:
                stats = workers["pi-" + arch]["stats"]
                assert stats["cpuCount"] >= 1 and stats["memory"]["total"] > 0 and stats["disk"]["total"] > 0
                # Read from /sys/class/thermal (or hwmon) when the board has a sensor; a
                # container on this machine has none, so it is null rather than made up.
                sensors = pis[arch].sh("ls /sys/class/thermal 2>/dev/null | grep -c thermal_zone", check=False)
                if sensors.stdout.strip() in ("", "0"):
                    assert stats["temperature"] is None
                else:
                    assert isinstance(stats["temperature"], float)
        finally:
            testbed.close()
