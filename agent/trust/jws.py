"""JWS compact serialization (RFC 7515) with EdDSA over Ed25519 (RFC 8037), and key ids.

Pure functions over keys and bytes. Signing happens for every published message, so the
protected header is encoded once per key and the rest is two base64url encodings and one
Ed25519 signature. The result verifies in any JOSE library given the public JWK (tests check
this against jwcrypto and joserfc).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class BadToken(ValueError):
    """A token that is malformed, not EdDSA, for another key, or whose signature fails."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c in text for c in "=+/ \n"):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order."""
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{b64url(raw_public(key))}"}}'
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)),
            "kid": thumbprint(key), "alg": "EdDSA", "use": "sig"}


def public_key_from_jwk(jwk: dict[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk:
        raise ValueError("not an Ed25519 public JWK (need kty OKP, crv Ed25519, x)")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))


class Signer:
    """Signs payloads with one key; the header (alg, kid) is encoded once."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.kid = thumbprint(key.public_key())
        header = json.dumps({"alg": "EdDSA", "kid": self.kid}, separators=(",", ":"))
        self._header = b64url(header.encode())

    def sign(self, payload: bytes) -> str:
        signing_input = f"{self._header}.{b64url(payload)}"
        return f"{signing_input}.{b64url(self._key.sign(signing_input.encode('ascii')))}"


def verify(token: str, key: Ed25519PublicKey) -> bytes:
    """The payload of ``token`` if it is a valid EdDSA JWS by ``key``; else :class:`BadToken`."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise BadToken("not a JWS compact serialization (need three dot-separated parts)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise BadToken(f"malformed: {exc}") from None
    if not isinstance(header, dict) or header.get("alg") != "EdDSA":
        raise BadToken(f"header alg must be EdDSA, got {header!r}")
    if "crit" in header:
        raise BadToken("header has 'crit' extensions this verifier does not understand")
    kid = header.get("kid")
    if kid is not None and kid != thumbprint(key):
        raise BadToken(f"signed by another key (kid {kid})")
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise BadToken("signature does not verify") from None
    return payload


def chain_hash(token: str) -> str:
    """What the next message of a stream carries as ``prev``: SHA-256 of this token's text."""
    return "sha256:" + b64url(hashlib.sha256(token.encode("ascii")).digest())
