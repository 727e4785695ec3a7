"""Where a master keeps its pools: ``store_url`` in master.yaml, checked and taken apart.

    mariadb://USER@HOST[:PORT][,HOST[:PORT]...]/DATABASE

Several hosts are the nodes of one Galera cluster (or one server and its spare): the
master talks to one at a time and moves to the next when it stops answering. The
password is never in the URL: it lives in ``store_password_file``.
"""

import collections
import re
import urllib.parse

from . import host_port

DEFAULT_PORT = 3306
SCHEMES = ("mariadb", "mysql")
_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")

StoreTarget = collections.namedtuple("StoreTarget", "user hosts database")


def parse(url):
    """A StoreTarget(user, [(host, port), ...], database); ValueError saying what is wrong."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError("expected mariadb://USER@HOST[:PORT][,HOST...]/DATABASE, got %r" % (url,))
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES:
        raise ValueError("the scheme must be mariadb:// (or mysql://), got %r" % (scheme,))
    credentials, at, rest = rest.rpartition("@")
    if not at or not credentials:
        raise ValueError("name the database user: mariadb://USER@HOST/DATABASE")
    if ":" in credentials:
        raise ValueError("put the password in store_password_file, not in store_url")
    user = urllib.parse.unquote(credentials)
    hosts_text, slash, database = rest.partition("/")
    if not slash or not _NAME.fullmatch(database):
        raise ValueError("name the database after the hosts: .../DATABASE (letters, digits, _ and $)")
    return StoreTarget(user, [host_port.parse(item, DEFAULT_PORT) for item in hosts_text.split(",")], database)
