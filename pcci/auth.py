"""Mutual challenge-response with the shared cluster key; the key never crosses the wire.

Handshake (see docs/protocol.md):

1. worker -> master  hello     {node, nonce: Nw}
2. master -> worker  challenge {nonce: Nm, proof: HMAC(K, "pcci-master" | Nw | Nm | node)}
3. worker checks the master's proof, then
   worker -> master  auth      {proof: HMAC(K, "pcci-worker" | Nm | Nw | node)}
4. master checks the worker's proof and answers welcome or error.

Fresh nonces on both sides defeat replay; the role label keeps one side's proof from
being reflected back as the other's.
"""

import hashlib
import hmac
import secrets

NONCE_BYTES = 32


def new_key():
    return secrets.token_hex(32)


def new_nonce():
    return secrets.token_hex(NONCE_BYTES)


def _proof(key, role, first_nonce, second_nonce, node):
    message = "|".join((role, first_nonce, second_nonce, node)).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def master_proof(key, worker_nonce, master_nonce, node):
    return _proof(key, "pcci-master", worker_nonce, master_nonce, node)


def worker_proof(key, master_nonce, worker_nonce, node):
    return _proof(key, "pcci-worker", master_nonce, worker_nonce, node)


def proofs_match(expected, given):
    return isinstance(given, str) and hmac.compare_digest(expected, given)


def token_matches(tokens, given):
    """Constant-time check of an API bearer token against every configured one."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(token.encode(), given.encode())
    return matched
