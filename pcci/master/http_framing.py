"""Where a request's body ends, decided once: a request whose framing two HTTP parsers
could read two ways is refused before its body is read (pure checks, no sockets).

A proxy in front of the master and the master itself must agree on where each request
ends, or the bytes one takes for a body the other answers as the next request (request
smuggling, RFC 9112 section 6.3). pywsgi reads a body as chunked when
``Transfer-Encoding`` is exactly ``chunked`` (and then drops ``Content-Length``),
else by the first ``Content-Length`` through ``int()`` (which takes ``+4`` and ``4_0``).
So a request is refused, with 400 and the connection closed, when it has:

* both ``Transfer-Encoding`` and ``Content-Length``;
* a ``Transfer-Encoding`` other than one ``chunked`` (``gzip, chunked``, ``chunked ``);
* a ``Content-Length`` that is not ASCII digits, or two that differ (equal repeats, which
  RFC 9110 lets a recipient merge, pass).
"""

import json
import re
from typing import List, Optional

from ..errors import MalformedRequest, UriTooLong

_DIGITS = re.compile(r"[0-9]{1,18}")


def framing_problem(content_lengths: List[str], transfer_encodings: List[str]) -> Optional[str]:
    """Why a request's head frames its body ambiguously, or None."""
    if transfer_encodings:
        if content_lengths:
            return "the request has both Transfer-Encoding and Content-Length"
        if len(transfer_encodings) > 1 or transfer_encodings[0].lower() != "chunked":
            return "Transfer-Encoding %r: only a single 'chunked' is understood" % ", ".join(transfer_encodings)[:100]
    if not all(_DIGITS.fullmatch(value.strip(" \t")) for value in content_lengths):
        return "Content-Length %r is not a number of bytes" % ", ".join(content_lengths)[:100]
    if len({int(value) for value in content_lengths}) > 1:
        return "the request has two different Content-Lengths (%s)" % ", ".join(content_lengths)[:100]
    return None


def bad_request(message: str) -> bytes:
    """A whole 400 answer, JSON as every API error, that closes the connection."""
    return closing_answer(MalformedRequest(message), b"400 Bad Request")


def uri_too_long(limit: int) -> bytes:
    """The server's own 414 (a request line over its limit), JSON as every API error."""
    return closing_answer(UriTooLong("the request line is over %d bytes; put a long target in POST /job's "
                                     "body, or name a group (@NAME)" % limit), b"414 URI Too Long")


def closing_answer(error, status_line: bytes) -> bytes:
    body = (json.dumps(error.to_json()) + "\n").encode()
    return (b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (status_line, len(body), body))
