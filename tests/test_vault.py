import secrets

import pytest

from gateway.storage import vault

KEY = secrets.token_bytes(32)


def test_round_trip_and_fresh_nonce():
    data = {"access_token": "t0k", "refresh_token": "r", "n": 3}
    first = vault.encrypt(KEY, data, associated="acct_1")
    second = vault.encrypt(KEY, data, associated="acct_1")
    assert first != second  # a new nonce every time
    assert b"t0k" not in first
    assert vault.decrypt(KEY, first, associated="acct_1") == data


@pytest.mark.parametrize(
    "key, associated, tamper",
    [
        (secrets.token_bytes(32), "acct_1", False),  # another key
        (KEY, "acct_2", False),  # copied to another account's row
        (KEY, "acct_1", True),  # a flipped bit
    ],
    ids=["another-key", "another-row", "flipped-bit"],  # stable: a random key makes a new id each run
)
def test_refuses_wrong_key_other_row_and_tampering(key, associated, tamper):
    sealed = bytearray(vault.encrypt(KEY, {"a": "b"}, associated="acct_1"))
    if tamper:
        sealed[-1] ^= 1
    with pytest.raises(vault.VaultError):
        vault.decrypt(key, bytes(sealed), associated=associated)


def test_refuses_garbage_and_short_keys():
    with pytest.raises(vault.VaultError):
        vault.decrypt(KEY, b"\x02" + b"0" * 40, associated="x")
    with pytest.raises(ValueError):
        vault.encrypt(b"short", {}, associated="x")
