"""The dashboard's files, served by the master at / and /ui/NAME from the package's
``dashboard`` directory: plain HTML, CSS and JavaScript, no build step, nothing fetched
from elsewhere (clusters are often offline).

The page holds no data and no token: it asks the API for everything, with the token
the user pastes in (kept in the browser session only). Every file goes out with a
Content-Security-Policy that allows scripts, styles and connections from this origin
only and no inline script, so a job's output that holds markup can never run.
"""

import hashlib
import logging
import os

from .api_edge import Document

log = logging.getLogger(__name__)
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


class DashboardFiles:
    """The files, read once at start: name -> (bytes, content type, ETag)."""

    def __init__(self, directory=HERE):
        self.files = {}
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            # An install that left the package's data out: the API works, / says why not.
            log.warning("the dashboard is not served: its files are missing (%s)", exc)
            names = []
        for name in names:
            kind = TYPES.get(os.path.splitext(name)[1])
            if kind is None:
                continue
            with open(os.path.join(directory, name), "rb") as handle:
                body = handle.read()
            self.files[name] = (body, kind, '"%s"' % hashlib.sha256(body).hexdigest()[:20])

    def answer(self, name, if_none_match):
        """(status, Document) for a file; None for a name that is not one of them. A
        browser that has this version gets 304 without the body."""
        found = self.files.get(name)
        if found is None:
            return None
        body, kind, etag = found
        headers = dict(HEADERS, ETag=etag)
        if if_none_match and etag in if_none_match:
            return 304, Document(b"", kind, headers)
        return 200, Document(body, kind, headers)
