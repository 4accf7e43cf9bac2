"""The capability in a media asset's public URL, and the only trace of it the database keeps.

Platforms pull media from ``/media/{id}/{token}/{filename}`` without an API key, so whoever holds
the token can read the file. The database stores only the token's SHA-256: a copy of the table (a
backup, a replica, a leaked dump) opens no file. The token itself is an HMAC of the asset id under
the service's secret key, so the service can rebuild a URL whenever a post is published or an
asset is read, without keeping the token anywhere. SHA-256 is enough for the stored form: the
token has 256 bits of entropy, so there is nothing to brute-force.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# Keeps this HMAC apart from any other use of the same secret key.
_PURPOSE = b"socialgate media url token\x00"


def access_token(secret_key: bytes, media_id: str) -> str:
    """The URL token of an asset: 43 URL-safe characters."""
    digest = hmac.new(secret_key, _PURPOSE + media_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What the row stores and what serving compares: the hex SHA-256 of a presented token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
