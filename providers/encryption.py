"""Media encrypted before upload, for platforms that take only ciphertext (Snapchat's Public Profile API).

Snap stores what it is sent encrypted with AES-256-CBC under a key and IV the uploader chooses
and declares with the upload. Here with ``cryptography`` (never a hand-rolled cipher), streamed:
``update`` takes the file piece by piece, so a large video is never held twice in memory.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class EncryptedMedia:
    """A media file encrypted with AES-256-CBC and PKCS#7 padding, under a fresh random key (32 bytes)
    and IV (16 bytes) of its own unless given."""

    def __init__(self, key: bytes | None = None, iv: bytes | None = None) -> None:
        self.key = key if key is not None else os.urandom(32)
        self.iv = iv if iv is not None else os.urandom(16)
        self._encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).encryptor()
        self._padder = padding.PKCS7(algorithms.AES.block_size).padder()

    def update(self, plain: bytes) -> bytes:
        return self._encryptor.update(self._padder.update(plain))

    def finalize(self) -> bytes:
        return self._encryptor.update(self._padder.finalize()) + self._encryptor.finalize()

    def declaration(self) -> dict[str, str]:
        """What Snap needs to decrypt the upload: ``key`` and ``iv`` in base64."""
        return {"key": base64.b64encode(self.key).decode("ascii"), "iv": base64.b64encode(self.iv).decode("ascii")}
