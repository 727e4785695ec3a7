from pcci import auth


def test_each_side_proves_the_key_without_sending_it():
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    master = auth.master_proof(key, wn, mn, "node1")
    worker = auth.worker_proof(key, mn, wn, "node1")
    assert key not in master and key not in worker
    assert auth.proofs_match(auth.master_proof(key, wn, mn, "node1"), master)
    assert auth.proofs_match(auth.worker_proof(key, mn, wn, "node1"), worker)


def test_wrong_key_fails():
    wn, mn = auth.new_nonce(), auth.new_nonce()
    assert not auth.proofs_match(auth.worker_proof("k" * 64, mn, wn, "n"), auth.worker_proof("j" * 64, mn, wn, "n"))


def test_a_recorded_proof_is_useless_against_a_fresh_challenge():
    key, wn = auth.new_key(), auth.new_nonce()
    recorded = auth.worker_proof(key, auth.new_nonce(), wn, "node1")
    assert not auth.proofs_match(auth.worker_proof(key, auth.new_nonce(), wn, "node1"), recorded)


def test_master_proof_cannot_be_reflected_as_a_worker_proof():
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    assert auth.master_proof(key, wn, mn, "n") != auth.worker_proof(key, wn, mn, "n")


def test_proof_is_bound_to_the_node_name():
    key, wn, mn = auth.new_key(), auth.new_nonce(), auth.new_nonce()
    assert auth.worker_proof(key, mn, wn, "node1") != auth.worker_proof(key, mn, wn, "node2")


def test_token_check():
    assert auth.token_matches(["t" * 20, "u" * 20], "u" * 20)
    assert not auth.token_matches(["t" * 20], "t" * 19)
    assert not auth.token_matches([], "anything")
