"""Mutual challenge-response with the shared cluster key, bound to the link's TLS certificate.

Handshake (see docs/protocol.md), over TLS:

1. worker -> master  hello     {node, nonce: Nw}
2. master -> worker  challenge {nonce: Nm}
3. worker -> master  auth      {proof: HMAC(K, "pcci-worker" | Nm | Nw | node | FP)}
4. master checks the worker's proof, then
   master -> worker  welcome   {proof: HMAC(K, "pcci-master" | Nw | Nm | node | FP)}
5. the worker checks the master's proof before it obeys anything.

FP is the fingerprint of the master's TLS certificate as the worker saw it and as the
master knows it: a man in the middle who shows the worker his own certificate makes the
two sides compute different proofs, and cannot compute either without K. The worker
proves first, so a stranger who merely connects to the master never gets an HMAC to
guess the key from; the key itself must still be strong (``key_weakness``). Fresh
nonces on both sides defeat replay; the role label keeps one side's proof from being
reflected back as the other's.
"""

import hashlib
import hmac
import math
import secrets
import string

NONCE_BYTES = 32
MIN_KEY_BITS = 256
# Character classes a key may be drawn from, smallest first: a key is credited with
# log2(size of the smallest class holding all its characters) bits per character.
_KEY_ALPHABETS = (
    ("hex", set(string.hexdigits.lower())),
    ("hex", set(string.hexdigits.upper() + string.digits)),
    ("lowercase letters and digits", set(string.ascii_lowercase + string.digits)),
    ("letters and digits", set(string.ascii_letters + string.digits)),
    ("base64", set(string.ascii_letters + string.digits + "+/=-_")),
    ("printable ASCII", set(string.printable) - set(string.whitespace)),
)


def new_key():
    return secrets.token_hex(32)


def new_nonce():
    return secrets.token_hex(NONCE_BYTES)


def key_bits(key):
    """An upper bound on a key's randomness from its length and alphabet; 0 for a key
    that is plainly not random (one character repeated, a short pattern repeated)."""
    if not key:
        return 0
    if _is_repetition(key) or len(set(key)) < min(len(key), 16) // 2:
        return 0
    for _name, alphabet in _KEY_ALPHABETS:
        if set(key) <= alphabet:
            return int(len(key) * math.log2(len(alphabet)))
    return int(len(key) * 8)


def _is_repetition(key):
    """'abcabcabc...': a key that is some shorter string over and over."""
    return (key + key).find(key, 1) < len(key)


def key_weakness(key):
    """Why a cluster key is too weak to use, or None. Random keys from 'pcci keygen' pass."""
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        return ("the cluster key has at most %d bits of randomness, fewer than %d (a weak key can be "
                "guessed offline from one recorded handshake); make a new one with 'pcci keygen' and "
                "give it to the master and every worker" % (bits, MIN_KEY_BITS))
    return None


def _proof(key, role, first_nonce, second_nonce, node, cert_fingerprint):
    message = "|".join((role, first_nonce, second_nonce, node, cert_fingerprint)).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def master_proof(key, worker_nonce, master_nonce, node, cert_fingerprint):
    return _proof(key, "pcci-master", worker_nonce, master_nonce, node, cert_fingerprint)


def worker_proof(key, master_nonce, worker_nonce, node, cert_fingerprint):
    return _proof(key, "pcci-worker", master_nonce, worker_nonce, node, cert_fingerprint)


def proofs_match(expected, given):
    return isinstance(given, str) and hmac.compare_digest(expected, given)


def cluster_key(value):
    """The cluster_key setting (or the cluster_key_file's text), checked for strength; ValueError says why not."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a key made by 'pcci keygen', got %r" % (value,))
    weakness = key_weakness(value.strip())
    if weakness:
        raise ValueError(weakness)
    return value.strip()
