"""The chaos soak (tests/chaos.py): faults of every kind while pools run, then a check of
the whole history. A few minutes at most in CI; PCCI_CHAOS_SECONDS makes it longer by
hand, PCCI_CHAOS_SEED replays a run."""

import os
import random

from chaos import Soak
from conftest import PowerCutMount

SECONDS = float(os.environ.get("PCCI_CHAOS_SECONDS", "45"))


def test_a_chaos_soak_loses_and_duplicates_nothing(cluster, powercut, tmp_path):
    seed = int(os.environ.get("PCCI_CHAOS_SEED") or random.SystemRandom().randrange(10 ** 6))
    worker_disk = PowerCutMount(tmp_path / "worker-disk")
    soak = Soak(cluster, powercut, worker_disk, seed, SECONDS, str(tmp_path))
    try:
        soak.run()
        violations, counts = soak.check()
    finally:
        cluster.stop()
        soak.close()
        worker_disk.close()
    print(soak.summary(counts))
    assert violations == [], "seed %d: %s" % (seed, violations[:10])
    assert counts["pools"] > 20 and counts["faults"] > 5
