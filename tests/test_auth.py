import secrets

import pytest

from pcci import auth

FP = "sha256:" + "ab" * 32
OTHER_FP = "sha256:" + "cd" * 32


def test_each_side_proves_the_key_without_sending_it():
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    master = auth.master_proof(key, wn, mn, "node1", FP)
    worker = auth.worker_proof(key, mn, wn, "node1", FP)
    assert key not in master and key not in worker
    assert auth.proofs_match(auth.master_proof(key, wn, mn, "node1", FP), master)
    assert auth.proofs_match(auth.worker_proof(key, mn, wn, "node1", FP), worker)


def test_a_different_key_gives_a_different_proof():
    wn, mn = auth.new_nonce(), auth.new_nonce()
    assert not auth.proofs_match(auth.worker_proof(auth.new_key(), mn, wn, "n", FP),
                                 auth.worker_proof(auth.new_key(), mn, wn, "n", FP))


def test_a_recorded_proof_does_not_answer_a_fresh_challenge():
    key, wn = auth.new_key(), auth.new_nonce()
    recorded = auth.worker_proof(key, auth.new_nonce(), wn, "node1", FP)
    assert not auth.proofs_match(auth.worker_proof(key, auth.new_nonce(), wn, "node1", FP), recorded)


def test_master_proof_cannot_be_reflected_as_a_worker_proof():
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    assert auth.master_proof(key, wn, mn, "n", FP) != auth.worker_proof(key, wn, mn, "n", FP)


def test_proof_is_bound_to_the_node_name():
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    assert auth.worker_proof(key, mn, wn, "node1", FP) != auth.worker_proof(key, mn, wn, "node2", FP)


def test_proof_is_bound_to_the_certificate_the_worker_saw():
    # A man in the middle shows the worker his own certificate: the worker's proof then
    # covers his fingerprint, and the master, checking against its own, refuses it.
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    assert not auth.proofs_match(auth.worker_proof(key, mn, wn, "n", FP), auth.worker_proof(key, mn, wn, "n", OTHER_FP))
    assert not auth.proofs_match(auth.master_proof(key, wn, mn, "n", FP), auth.master_proof(key, wn, mn, "n", OTHER_FP))


@pytest.mark.parametrize("key", [
    auth.new_key(),                                   # what pcci keygen makes: 64 hex digits
    secrets.token_urlsafe(43),                        # 43 base64 characters
    "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(64)),   # the Ansible role's
])
def test_random_keys_are_strong_enough(key):
    assert auth.key_bits(key) >= auth.MIN_KEY_BITS
    assert auth.key_weakness(key) is None


@pytest.mark.parametrize("key", [
    "a" * 64,                                         # one character
    "0123456789abcdef" * 4,                           # a pattern repeated
    "ab" * 40,
    secrets.token_hex(16),                            # 128 bits: 32 hex digits, yesterday's minimum
    "correct horse battery staple",                   # a passphrase
    "",
])
def test_weak_keys_are_refused_with_the_way_out(key):
    problem = auth.key_weakness(key)
    assert problem is not None and "pcci keygen" in problem
