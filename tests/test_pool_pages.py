"""GET /pools pages by bytes as well as by count (pcci/master/pool_pages.py): the body
stays under the cap however many pools are asked for, and following ``next`` gives
every pool once. Real master and worker processes."""

import json
import urllib.request

from pcci.master.pool_pages import LIST_BYTES, fitting, render_page


def test_fitting_keeps_what_fits_and_always_one():
    assert fitting([3, 3, 3], 7) == 2
    assert fitting([3, 3, 3], 9) == 3
    assert fitting([50, 1], 10) == 1
    assert fitting([], 10) == 0


def test_the_rendered_page_ends_before_the_pool_that_would_pass_the_cap():
    pools = [{"id": "p%d" % n, "cmd": "\u0001" * 100} for n in range(5)]      # escapes: 6 bytes each
    body = json.loads(render_page(iter(pools), cut=False, max_bytes=1300))
    assert [p["id"] for p in body["pools"]] == ["p0", "p1"] and body["next"] == "p1"
    assert json.loads(render_page(iter(pools), cut=False))["next"] is None
    assert json.loads(render_page(iter(pools[:1]), cut=True))["next"] == "p0"
    assert json.loads(render_page(iter([]), cut=False)) == {"pools": [], "next": None}


def test_listing_large_pools_is_paged_by_bytes_and_loses_nothing(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    cmd = "true " + "x" * 100000
    created = []
    for _ in range(60):                                 # ~6 MB of listings
        status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": ["pi1"]})
        assert status == 202, submitted
        created.append(submitted["id"])
    seen, before, pages = [], None, 0
    while True:
        path = "/pools?limit=1000" + ("&before=" + before if before else "")
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (cluster.api_port, path), timeout=30) as response:
            body = response.read()
        assert len(body) <= LIST_BYTES
        page = json.loads(body)
        seen += [pool["id"] for pool in page["pools"]]
        pages += 1
        if page["next"] is None:
            break
        before = page["next"]
    assert pages >= 2 and seen == sorted(created, reverse=True)
