"""Encryption at rest for provider credentials: AES-256-GCM with the runtime's secret key.

A sealed value is ``version byte || 12-byte nonce || ciphertext+tag``. ``associated`` data (the
account id, say) is authenticated but not stored: a ciphertext copied onto another row fails to
open there, so credentials cannot be moved between accounts in the database.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12


class VaultError(Exception):
    """A sealed value could not be opened: wrong key, wrong associated data, or tampering."""


def _cipher(key: bytes) -> AESGCM:
    if len(key) != 32:
        raise ValueError("the vault key must be 32 bytes")
    return AESGCM(key)


def encrypt(key: bytes, data: dict[str, Any], *, associated: str) -> bytes:
    """Seal a JSON-serialisable mapping; a fresh random nonce each time."""
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return VERSION + nonce + _cipher(key).encrypt(nonce, plaintext, associated.encode())


def decrypt(key: bytes, sealed: bytes, *, associated: str) -> dict[str, Any]:
    """Open a value sealed by ``encrypt`` with the same key and associated data, or raise VaultError."""
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
        raise VaultError("not a sealed value of a known version")
    nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        plaintext = _cipher(key).decrypt(nonce, ciphertext, associated.encode())
    except InvalidTag:
        raise VaultError("the sealed value does not open with this key and associated data") from None
    return json.loads(plaintext)
