"""The master's check of a worker's heartbeat stats (pure), and what /metrics makes of
whatever stats a worker record holds."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pcci.master import metrics_samples, worker_stats
from pcci.master.registry import Registry, WorkerInfo
from pcci.model import WorkerRecord

PI = {"cpuPercent": 12.5, "cpuCount": 4, "loadAverage": [0.5, 0.25, 0.1],
      "memory": {"total": 4 * 2 ** 30, "available": 2 ** 30, "percent": 75.0},
      "disk": {"path": "/", "total": 32 * 10 ** 9, "free": 10 ** 9, "percent": 96.9},
      "temperature": 61.3, "bootTime": 1764000000}

# Any JSON value the frame decoder can give (finite numbers, any text, nested).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-10 ** 30, max_value=10 ** 30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
# ... and, for the pure function, anything at all a Python caller could pass.
ANYTHING = JSON | st.floats() | st.just(float("nan")) | st.just(10 ** 400) | st.text(alphabet="\ud800\udfff")


def is_number(value):
    return type(value) in (int, float) and math.isfinite(value)


def documented_problems(stats):
    """Every way these stats break docs/api.md's description, as worker_stats.FIELDS says it."""
    problems = []
    for name, value in stats.items():
        if value is None:
            continue
        if name in ("cpuPercent", "temperature"):
            ok = is_number(value)
        elif name in ("cpuCount", "bootTime"):
            ok = type(value) is int and value >= 0
        elif name == "loadAverage":
            ok = type(value) is list and len(value) == 3 and all(is_number(v) and v >= 0 for v in value)
        elif name in ("memory", "disk"):
            ok = type(value) is dict and all(
                v is None or (k == "path" and type(v) is str and 0 < len(v) <= 4096 and v.encode("utf-8"))
                or (k in ("total", "available", "free") and type(v) is int and 0 <= v < 2 ** 63)
                or (k == "percent" and is_number(v) and 0 <= v <= 100)
                for k, v in value.items()) and set(value) <= set(worker_stats.FIELDS[name])
        else:
            ok = False
        if not ok:
            problems.append(name)
    return problems


def test_a_pis_stats_are_kept_as_they_are():
    assert worker_stats.clean(PI) == (PI, [])
    assert worker_stats.clean(dict(PI, temperature=None, cpuCount=None)) == (dict(PI, temperature=None,
                                                                                   cpuCount=None), [])


def test_a_bad_field_is_dropped_and_named_and_the_rest_kept():
    stats, dropped = worker_stats.clean(dict(PI, loadAverage=["high", 1, 2]))
    assert stats == {key: value for key, value in PI.items() if key != "loadAverage"}
    assert dropped == ["loadAverage"]
    stats, dropped = worker_stats.clean(dict(PI, memory={"total": "4G", "available": -1, "percent": 75.0},
                                             disk={"path": "\ud800", "total": 10 ** 30, "free": True}))
    assert stats["memory"] == {"percent": 75.0} and stats["disk"] == {}
    assert dropped == ["memory.total", "memory.available", "disk.path", "disk.total", "disk.free"]


def test_numbers_out_of_range_or_shape_are_dropped():
    for field, value in (("cpuPercent", 100.5), ("cpuPercent", -1), ("cpuCount", 0), ("cpuCount", 2.5),
                         ("loadAverage", [1, 2]), ("loadAverage", [1, 2, 3, 4]), ("loadAverage", [1, -2, 3]),
                         ("temperature", 10 ** 400), ("temperature", float("nan")), ("temperature", float("inf")),
                         ("bootTime", -5), ("bootTime", 10 ** 12), ("memory", [1]), ("disk", "sda1")):
        assert worker_stats.clean({field: value}) == ({}, [field]), (field, value)


def test_a_whole_number_written_as_a_float_is_taken_as_a_whole_number():
    assert worker_stats.clean({"memory": {"total": 4.0e9}}) == ({"memory": {"total": 4000000000}}, [])


def test_unknown_fields_are_left_out_without_complaint():
    assert worker_stats.clean({"cpuPercent": 1, "gpuPercent": 5, "blob": "x" * 20000}) == ({"cpuPercent": 1}, [])


def test_stats_that_are_not_an_object_keep_the_last_ones():
    assert worker_stats.clean(None) == (None, [])
    for stats in ([1], "lots", 5, True):
        assert worker_stats.clean(stats) == (None, ["stats"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(worker_stats.FIELDS) + ["other"]), ANYTHING)
       | st.fixed_dictionaries({}, optional={
           "memory": st.dictionaries(st.sampled_from(["total", "available", "percent", "x"]), ANYTHING),
           "disk": st.dictionaries(st.sampled_from(["path", "total", "free", "percent"]), ANYTHING)})
       | ANYTHING)
def test_whatever_a_worker_sends_only_documented_types_come_out(stats):
    kept, dropped = worker_stats.clean(stats)
    if kept is None:
        assert stats is None or type(stats) is not dict
        return
    assert documented_problems(kept) == []
    # What comes out is JSON every parser reads, in UTF-8, and small.
    text = json.dumps(kept, ensure_ascii=False, allow_nan=False)
    assert len(text.encode("utf-8")) < 20000
    assert all(name.split(".")[0] in worker_stats.FIELDS for name in dropped)


@settings(max_examples=200, deadline=None)
@given(ANYTHING)
def test_metrics_rows_take_any_stats_a_record_holds(stats):
    """Even unchecked stats (a store written by an older master) never fail a scrape."""
    info = WorkerInfo("pi1", stats=stats, labels={"rack": "b"})
    info.session = type("Session", (), {"ready": True})()
    rows = metrics_samples.worker_rows([info], 0, metrics_samples.label_keys([info]))
    for samples in rows.values():
        for labels, value in samples:
            assert type(value) is float and math.isfinite(value) and labels == ["pi1", "b"]


def test_stats_loaded_from_the_store_are_checked_too():
    registry = Registry()
    registry.load([WorkerRecord("pi1", "10.0.0.1", 1, 2, {"loadAverage": ["high", 1, 2], "cpuPercent": 3}, {})], 5)
    assert registry.get("pi1").stats == {"cpuPercent": 3}


def test_malformed_stats_are_logged_once_then_at_most_once_per_interval():
    complaints = worker_stats.Complaints(interval_ms=1000)
    assert complaints.due(0) == 0
    assert [complaints.due(now) for now in (100, 500, 999)] == [None, None, None]
    assert complaints.due(1000) == 3
    assert complaints.due(1500) is None and complaints.due(2000) == 1


def test_the_openapi_document_and_the_api_docs_name_every_stats_field():
    import os
    from pcci.master.openapi import SPEC
    schema = SPEC["components"]["schemas"]["Worker"]["properties"]["stats"]
    assert schema == worker_stats.openapi_schema()
    assert set(schema["properties"]) == set(worker_stats.FIELDS)
    assert set(schema["properties"]["disk"]["properties"]) == set(worker_stats.FIELDS["disk"])
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "api.md")) as handle:
        api_md = handle.read()
    stats_row = next(line for line in api_md.splitlines() if line.startswith("| `stats` |"))
    for name in list(worker_stats.FIELDS) + list(worker_stats.FIELDS["memory"]) + list(worker_stats.FIELDS["disk"]):
        assert "`%s`" % name in stats_row, name
