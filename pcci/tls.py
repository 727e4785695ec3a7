"""TLS for the worker link and the API: self-made certificates, contexts, fingerprints.

The worker link needs no CA: the master makes itself a key pair and a self-signed
certificate at first start, and both handshake proofs cover the SHA-256 fingerprint of
the certificate the worker saw (docs/protocol.md), so a man in the middle with his own
certificate cannot make or relay a valid proof.

Certificates are made with the ``openssl`` command (the Debian package depends on it):
Python's ssl module can use a certificate but not make one, and the command is on every
Debian system that has ca-certificates.
"""

import hashlib
import logging
import os
import socket
import ssl
import subprocess

from .durable_files import PRIVATE_FILE, make_directories
from .errors import CannotStart

log = logging.getLogger(__name__)

CERTIFICATE_DAYS = 3650


def fingerprint(der):
    """The SHA-256 fingerprint of a DER certificate, as 'sha256:<64 hex>'."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text):
    """'sha256:AB:CD..', 'SHA256 Fingerprint=AB:CD..' (openssl x509 -fingerprint) or bare hex -> 'sha256:abcd..'."""
    value = text.strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    value = value.replace(":", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("expected a SHA-256 fingerprint (64 hex digits, colons allowed), got %r" % text[:100])
    return "sha256:" + value


def file_fingerprint(cert_path):
    """The fingerprint of the first certificate in a PEM file."""
    with open(cert_path, encoding="ascii") as handle:
        return fingerprint(ssl.PEM_cert_to_DER_cert(handle.read()))


def peer_fingerprint(tls_socket):
    return fingerprint(tls_socket.getpeercert(binary_form=True))


def local_names():
    """Names and addresses a client may use for this machine, for a certificate's subjectAltName."""
    names = {"localhost", socket.gethostname(), socket.gethostname().split(".")[0], "127.0.0.1", "::1"}
    try:
        import psutil
        for entries in psutil.net_if_addrs().values():
            for entry in entries:
                if entry.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(entry.address.split("%")[0])
    except Exception:   # a best effort: the names above still work
        pass
    return sorted(n for n in names if n)


def subject_alt_names(names):
    """'DNS:a,IP:10.0.0.1,...': each address as an IP entry, each other name as a DNS one."""
    import ipaddress        # here, as shutil below: only a master makes certificates
    entries = []
    for name in names:
        try:
            entries.append("IP:%s" % ipaddress.ip_address(name))
        except ValueError:
            entries.append("DNS:%s" % name)
    return ",".join(entries)


def ensure_certificate(cert_path, key_path, common_name, extra_names=()):
    """Make a self-signed P-256 certificate and key at these paths unless both exist.
    Returns True when it made them. The key is written 0600 before any key byte exists."""
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return False
    import shutil
    openssl = shutil.which("openssl")
    if not openssl:
        raise CannotStart("no TLS certificate at %s and no 'openssl' command to make one: install openssl "
                          "(apt install openssl) or give a certificate and key in the config" % cert_path)
    san = subject_alt_names(sorted(set(local_names()) | set(extra_names)))
    directory = os.path.dirname(os.path.abspath(cert_path))
    make_directories(directory)
    key_tmp, cert_tmp = key_path + ".new", cert_path + ".new"
    old_umask = os.umask(0o077)
    try:
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-sha256", "-days", str(CERTIFICATE_DAYS), "-subj", "/CN=%s" % common_name,
                        "-addext", "subjectAltName=%s" % san, "-addext", "basicConstraints=critical,CA:TRUE",
                        "-keyout", key_tmp, "-out", cert_tmp],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)
    except subprocess.CalledProcessError as exc:
        raise CannotStart("openssl could not make a certificate at %s: %s"
                          % (cert_path, exc.stderr.decode(errors="replace").strip()[-300:]))
    finally:
        os.umask(old_umask)
    os.chmod(key_tmp, PRIVATE_FILE)
    os.chmod(cert_tmp, 0o644)       # public: workers pin it (master_fingerprint), admins copy it
    os.replace(key_tmp, key_path)
    os.replace(cert_tmp, cert_path)
    log.info("made a self-signed TLS certificate %s (%s)", cert_path, file_fingerprint(cert_path))
    return True


def server_context(cert_path, key_path, minimum=ssl.TLSVersion.TLSv1_2):
    """gevent's SSLContext: the stdlib's would block the hub."""
    from gevent import ssl as gevent_ssl
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum
    try:
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise CannotStart("cannot load the TLS certificate %s and key %s: %s" % (cert_path, key_path, exc))
    return context


def link_client_context(cafile=None):
    """The worker's context. Without a CA file the certificate is not checked against a CA:
    the handshake proofs bind it instead (docs/protocol.md). With one, it must verify too."""
    from gevent import ssl as gevent_ssl
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if cafile:
        context.load_verify_locations(cafile)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
