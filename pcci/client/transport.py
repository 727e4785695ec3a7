"""HTTP to the masters: one call, failover across the listed masters, a standby's 307
followed, pinned or CA-checked https (stdlib only, so the CLI starts fast)."""

import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080"
CLIENT_CONFIG = os.path.join(os.path.expanduser("~"), ".config", "pcci", "client.yaml")


# How long `submit` keeps retrying while the master answers 429 busy (back-pressure).
BUSY_RETRY_SECONDS = 60.0
# PcciError.code for a problem on this side (a token file), not the master's answer.
LOCAL_SETUP = "local_setup"


class PcciError(Exception):
    def __init__(self, message, status=None, code=None, retry_after=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class _NotLeader(Exception):
    def __init__(self, location):
        super().__init__(location)
        self.location = location


class _Unreachable(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def settings(url=None, token=None, token_file=None, cacert=None, fingerprint=None, environ=os.environ,
             config_path=CLIENT_CONFIG):
    """Master URL, token, CA file and pinned certificate fingerprint: flags first, then
    PCCI_URL / PCCI_TOKEN / PCCI_TOKEN_FILE / PCCI_CACERT / PCCI_FINGERPRINT, then the client
    config file (url:, token: or token_file:, cacert:, fingerprint:)."""
    stored = {}
    if os.path.exists(config_path):
        import yaml         # only then: the command starts faster without it
        with open(config_path, encoding="utf-8") as handle:
            stored = yaml.safe_load(handle) or {}
    token_file = token_file or environ.get("PCCI_TOKEN_FILE") or stored.get("token_file")
    return (url or environ.get("PCCI_URL") or stored.get("url") or DEFAULT_URL,
            token or (read_token_file(token_file) if token_file and not environ.get("PCCI_TOKEN") else None)
            or environ.get("PCCI_TOKEN") or stored.get("token"),
            cacert or environ.get("PCCI_CACERT") or stored.get("cacert"),
            fingerprint or environ.get("PCCI_FINGERPRINT") or stored.get("fingerprint"))


def read_token_file(path):
    """The first token in a file (the format of the master's api_tokens_file: # starts a comment)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            for line in handle:
                token = line.split("#", 1)[0].strip()
                if token:
                    return token
    except OSError as exc:
        raise PcciError("cannot read the token file %s: %s" % (path, exc.strerror), code=LOCAL_SETUP)
    raise PcciError("the token file %s holds no token" % path, code=LOCAL_SETUP)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """https to a master whose certificate must have one SHA-256 fingerprint (the master logs
    it at start): no CA needed, and any other certificate is refused before a byte is sent."""

    pinned = None

    def connect(self):
        import hashlib
        super().connect()
        seen = "sha256:" + hashlib.sha256(self.sock.getpeercert(binary_form=True)).hexdigest()
        if seen != self.pinned:
            self.sock.close()
            raise ssl.SSLError("the master's certificate is %s, not the pinned %s" % (seen, self.pinned))


class PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, fingerprint):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE     # the pin checks the certificate instead
        super().__init__(context=context)
        self.connection = type("Pinned", (PinnedHTTPSConnection,), {"pinned": fingerprint})

    def https_open(self, req):
        return self.do_open(self.connection, req, context=self._context)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect comes back as the 307 it is: the client decides whether to follow it."""

    def redirect_request(self, *args, **kwargs):
        return None


def master_urls(text):
    """'https://m1:8080,https://m2:8080' (or a list, from client.yaml) -> the URLs, in order."""
    items = text if isinstance(text, list) else str(text).split(",")
    urls = [item.strip().rstrip("/") for item in items if item and item.strip()]
    if not urls:
        raise PcciError("no master URL given", code=LOCAL_SETUP)
    return urls


def origin(url):
    parts = urllib.parse.urlsplit(url)
    return "%s://%s" % (parts.scheme, parts.netloc)


class Client:
    """Talks to one master of several: ``url`` may list them, comma-separated. A master that
    cannot be reached is passed over for the next; a standby's 307 ``not_leader`` is
    followed to the active master it names, which then serves the calls that follow."""

    def __init__(self, url, token=None, cafile=None, fingerprint=None):
        self.urls = master_urls(url)
        self.url = self.urls[0]
        self.token = token
        if fingerprint:
            from ..tls import normalize_fingerprint
            try:
                fingerprint = normalize_fingerprint(fingerprint)
            except ValueError as exc:
                raise PcciError(str(exc), code=LOCAL_SETUP)
            handler = PinnedHTTPSHandler(fingerprint)
        else:
            context = ssl.create_default_context(cafile=cafile) if cafile else None
            handler = urllib.request.HTTPSHandler(context=context)
        self.opener = urllib.request.build_opener(handler, NoRedirects)

    def call(self, method, path, body=None, timeout=60, opened=None):
        """The JSON answer; ``opened(headers)`` is called with the answer's headers as soon
        as they come, before its body (which POST /job?wait= sends once the pool is done)."""
        data = json.dumps(body).encode() if body is not None else None
        with self._open(method, path, data, {"Content-Type": "application/json"}, timeout) as response:
            if opened is not None:
                opened(response.headers)
            try:
                return json.loads(response.read().decode("utf-8"))
            except OSError as exc:
                raise PcciError("the answer from %s broke off: %s" % (self.url, exc))

    def events(self, pool_id, last_event_id=None, timeout=60):
        """The open text/event-stream response of a pool's events (read it line by line)."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return self._open("GET", "/pool/%s/events" % pool_id, None, headers, timeout)

    def _open(self, method, path, data, headers, timeout):
        """The response; each listed master is tried once while none can be reached, and a
        standby's redirect is followed once."""
        unreachable = []
        candidates = [self.url] + [url for url in self.urls if url != self.url]
        followed = False
        while candidates:
            base = candidates.pop(0)
            try:
                response = self._open_one(method, base + path, data, headers, timeout)
                self.url = base
                return response
            except _NotLeader as exc:
                if followed:
                    raise PcciError("the master at %s is a standby, and so is the one it named (%s); an "
                                      "election may be under way: retry" % (base, exc.location), 307, "not_leader")
                followed = True
                candidates.insert(0, origin(exc.location))
            except _Unreachable as exc:
                unreachable.append("%s: %s" % (base, exc.reason))
        raise PcciError("cannot reach the master at %s" % "; nor at ".join(unreachable))

    def _open_one(self, method, url, data, headers, timeout):
        request = urllib.request.Request(url, data=data, method=method)
        for name, value in headers.items():
            request.add_header(name, value)
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            return self.opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read().decode("utf-8"))["error"]
            except (ValueError, KeyError, TypeError):
                raise PcciError("HTTP %d from %s" % (exc.code, origin(url)), exc.code)
            if exc.code == 307 and error.get("code") == "not_leader" and exc.headers.get("Location"):
                raise _NotLeader(exc.headers["Location"])
            raise PcciError(error["message"], exc.code, error["code"], _seconds(exc.headers.get("Retry-After")))
        except (urllib.error.URLError, OSError) as exc:
            raise _Unreachable(getattr(exc, "reason", exc))

    def submit(self, cmd, workers=None, timeout=None, env=None, cwd=None, busy_retry=BUSY_RETRY_SECONDS,
               exclude=None, options=None, wait=None, accepted=None):
        """Submit a pool; while the master says it is busy (429), wait as it asks and try again.
        ``workers`` and ``exclude`` are lists of names or target expressions; ``options``
        other fields of POST /job (batch, maxFailures, offline, queueTimeout).

        ``wait``: in the same request, wait up to that many seconds for the pool to finish
        and answer it whole, as ``pool(id, wait)`` does (a master without ?wait= answers at
        once: its ``jobs`` then hold states, not objects); ``accepted(pool_id)`` is called
        as soon as the pool is accepted, before the wait."""
        body = dict(options or {}, cmd=cmd)
        for name, value in (("workers", workers), ("exclude", exclude), ("timeout", timeout), ("env", env),
                            ("cwd", cwd)):
            if value:
                body[name] = value
        path, call_timeout, opened = "/job", 60, None
        if wait is not None:
            path, call_timeout = "/job?wait=%g" % wait, wait + 30
            opened = _pool_id_to(accepted) if accepted is not None else None
        deadline = time.monotonic() + busy_retry
        while True:
            try:
                return self.call("POST", path, body, timeout=call_timeout, opened=opened)
            except PcciError as exc:
                pause = exc.retry_after or 1.0
                if exc.status != 429 or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)

    def pool(self, pool_id, wait=0):
        return self.call("GET", "/pool/%s?wait=%g" % (pool_id, wait), timeout=wait + 30)

    def wait_for(self, pool_id, step=30):
        while True:
            pool = self.pool(pool_id, wait=step)
            if pool["status"] == "done":
                return pool

    def pools(self, status=None, limit=50, before=None):
        query = "limit=%d" % limit + ("&status=" + status if status else "") + ("&before=" + before if before else "")
        return self.call("GET", "/pools?" + query)

    def workers(self, target=None, exclude=None):
        query = urllib.parse.urlencode([(name, value) for name, value in (("target", target), ("exclude", exclude))
                                        if value])
        return self.call("GET", "/workers" + ("?" + query if query else ""))["workers"]

    def forget_worker(self, name):
        return self.call("DELETE", "/workers/%s" % urllib.parse.quote(name, safe=""))

    def kill(self, pool_id, workers=None):
        return self.call("PUT", "/kill/%s" % pool_id, {"workers": workers} if workers else None)


def _pool_id_to(accepted):
    """Headers -> ``accepted(pool_id)`` from the Location of an accepted submit."""
    def opened(headers):
        location = headers.get("Location") or ""
        if location.startswith("/pool/"):
            accepted(location[len("/pool/"):])
    return opened


def _seconds(header):
    try:
        return max(0.0, min(float(header), 60.0))
    except (TypeError, ValueError):
        return None
