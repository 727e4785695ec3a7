"""API tokens with names and scopes (pure: parsing and matching, no files).

Scopes, each including the ones before it:

* ``read``    -- every GET; a job's env values are hidden (names shown), as env is how
                 people pass secrets;
* ``operate`` -- submit and kill pools, and see env values;
* ``admin``   -- what manages the cluster.

A token is given in master.yaml's ``api_tokens`` either as a bare string or as
``{name: NAME, scope: SCOPE, token: SECRET}``, and in ``api_tokens_file`` one a line as
``SECRET`` or ``SECRET NAME [SCOPE]``. A bare token, from before tokens had scopes, is
an ``admin`` token, as it could do everything then.
"""

import hmac
import re

SCOPES = ("read", "operate", "admin")
MIN_TOKEN_CHARS = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class ApiToken:
    __slots__ = ("name", "scope", "secret")

    def __init__(self, name, scope, secret):
        self.name, self.scope, self.secret = name, scope, secret

    def allows(self, needed):
        return SCOPES.index(self.scope) >= SCOPES.index(needed)

    def __repr__(self):      # never the secret
        return "ApiToken(%r, %r)" % (self.name, self.scope)


# Who calls a master that has no tokens (it then listens on loopback only).
LOCAL_USER = ApiToken("local", "admin", None)


def make_token(secret, name, scope):
    """One checked token; ValueError saying what is wrong (never quoting the secret)."""
    if not isinstance(secret, str) or len(secret) < MIN_TOKEN_CHARS or any(c.isspace() for c in secret):
        raise ValueError("a token must be a string of at least %d characters without spaces (make one with "
                         "'pcci keygen')" % MIN_TOKEN_CHARS)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError("token name %r must be 1-64 letters, digits or ._@- characters" % (name,))
    if scope not in SCOPES:
        raise ValueError("token %s: scope %r must be one of %s" % (name, scope, ", ".join(SCOPES)))
    return ApiToken(name, scope, secret)


def from_config_entry(entry, index):
    """An item of api_tokens: a bare string or a {name, scope, token} mapping."""
    if isinstance(entry, str):
        return make_token(entry, "api_tokens-%d" % (index + 1), "admin")
    if isinstance(entry, dict):
        unknown = set(entry) - {"name", "scope", "token"}
        if unknown:
            raise ValueError("token %d: unknown key(s) %s (known: name, scope, token)"
                             % (index + 1, ", ".join(sorted(map(str, unknown)))))
        return make_token(entry.get("token"), entry.get("name"), entry.get("scope", "read"))
    raise ValueError("token %d: expected a string or a mapping with name, scope and token" % (index + 1))


def from_lines(lines):
    """Tokens from a tokens file: 'SECRET [NAME [SCOPE]]' a line, '#' starts a comment."""
    tokens = []
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 3:
            raise ValueError("line %d: expected 'TOKEN [NAME [SCOPE]]'" % number)
        name = fields[1] if len(fields) > 1 else "line-%d" % number
        scope = fields[2] if len(fields) > 2 else "admin"
        try:
            tokens.append(make_token(fields[0], name, scope))
        except ValueError as exc:
            raise ValueError("line %d: %s" % (number, exc))
    return tokens


def check_unique(tokens):
    names = [t.name for t in tokens]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError("token names must be unique; repeated: %s" % ", ".join(repeated))
    secrets = [t.secret for t in tokens]
    if len(set(secrets)) != len(secrets):
        raise ValueError("the same token is given twice")
    return tokens


def match(tokens, given):
    """The token whose secret is ``given``, or None; constant time in the secret."""
    found = None
    for token in tokens:
        if hmac.compare_digest(token.secret.encode(), given.encode()):
            found = token
    return found
