"""The chaos soak (tests/chaos.py): faults of every kind while pools run on workers in
network namespaces, then a check of the whole history. Under a minute of faults in CI;
PCCI_CHAOS_SECONDS makes it longer by hand, PCCI_CHAOS_SEED replays a fault schedule."""

import os
import random

import pytest

import nspawn
from chaos import Soak
from conftest import PowerCutMount

SECONDS = float(os.environ.get("PCCI_CHAOS_SECONDS", "45"))


def test_a_chaos_soak_loses_and_duplicates_nothing(powercut, tmp_path):
    reason = nspawn.nspawn_supported()
    if reason:
        pytest.skip("network namespaces: %s" % reason)
    seed = int(os.environ.get("PCCI_CHAOS_SEED") or random.SystemRandom().randrange(10 ** 6))
    worker_disk = PowerCutMount(tmp_path / "worker-disk")
    soak = Soak(str(tmp_path / "soak"), powercut, worker_disk, seed, SECONDS)
    try:
        soak.run()
        violations, counts = soak.check()
    finally:
        soak.close()
        worker_disk.close()
    print(soak.summary(counts))
    assert violations == [], "seed %d: %s" % (seed, violations[:10])
    assert counts["pools"] > 20 and counts["faults"] > 5
