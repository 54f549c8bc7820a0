"""JWS compact serialization (RFC 7515) with EdDSA over Ed25519 (RFC 8037), and key ids.

Pure functions over keys and bytes. Signing happens for every published message, so the
protected header is encoded once per signer and the rest is two base64url encodings and one
Ed25519 signature. The result verifies in any JOSE library given the public JWK (tests check
this against jwcrypto and joserfc).

Strict on what it accepts, so that one message has exactly one text: base64url only in its
canonical form (no padding, no other alphabet, no set unused bits: RFC 7515 section 2 and RFC 4648
section 3.5), a header that is a JSON object without duplicate members, with ``alg`` EdDSA, the
expected ``typ`` (RFC 7515 section 4.1.9: a message cannot be passed off as an audit entry or the
other way round) and no ``crit``. A chain hash over that one text is then well defined.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MESSAGE: Final = "hpagent-message"  # typ of a published message
AUDIT: Final = "hpagent-audit"  # typ of an entry of the consent audit log

MAX_TOKEN: Final = 8 << 20  # characters; a backlog message is at most a few hundred KiB
MAX_HEADER: Final = 1024  # characters of the encoded protected header

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


class BadToken(ValueError):
    """A token that is malformed, not EdDSA, for another key, or whose signature fails."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Canonical base64url without padding only; ValueError for any other form of the bytes."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:  # the last character carries bits the bytes do not use
        raise ValueError("not canonical base64url (unused bits set)")
    return data


def json_object(data: bytes) -> dict[str, Any]:
    """A JSON object without duplicate members (RFC 7515 section 4 and RFC 8259 section 4)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            raise ValueError("duplicate member names")
        return out

    try:
        obj = json.loads(data, object_pairs_hook=pairs)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


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
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 public JWK (need kty OKP, crv Ed25519, x)")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))


class Signer:
    """Signs payloads with one key as one ``typ``; the header (alg, kid, typ) is encoded once."""

    def __init__(self, key: Ed25519PrivateKey, typ: str = MESSAGE) -> None:
        self._key = key
        self.kid = thumbprint(key.public_key())
        self.typ = typ
        header = json.dumps({"alg": "EdDSA", "kid": self.kid, "typ": typ}, separators=(",", ":"))
        self._header = b64url(header.encode())

    def sign(self, payload: bytes) -> str:
        signing_input = f"{self._header}.{b64url(payload)}"
        return f"{signing_input}.{b64url(self._key.sign(signing_input.encode('ascii')))}"


def verify(token: str, key: Ed25519PublicKey, typ: str | None = MESSAGE) -> bytes:
    """The payload of ``token`` if it is a valid EdDSA JWS by ``key`` of type ``typ`` (None:
    any or none, for foreign tokens); else :class:`BadToken`. Never raises anything else."""
    if len(token) > MAX_TOKEN:
        raise BadToken(f"longer than {MAX_TOKEN} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise BadToken("not a JWS compact serialization (need three dot-separated parts)")
    if len(parts[0]) > MAX_HEADER:
        raise BadToken(f"protected header longer than {MAX_HEADER} characters")
    try:
        header = json_object(b64url_decode(parts[0]))
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken(f"malformed: {exc}") from None
    if header.get("alg") != "EdDSA":
        raise BadToken(f"header alg must be EdDSA, got {header.get('alg')!r}")
    if "crit" in header:
        raise BadToken("header has 'crit' extensions this verifier does not understand")
    if typ is not None and header.get("typ") != typ:
        raise BadToken(f"header typ must be {typ!r}, got {header.get('typ')!r}")
    kid = header.get("kid")
    if kid is not None and kid != thumbprint(key):
        raise BadToken(f"signed by another key (kid {kid!r})")
    if len(signature) != 64:
        raise BadToken(f"an Ed25519 signature has 64 bytes, not {len(signature)}")
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise BadToken("signature does not verify") from None
    return payload


def chain_hash(token: str) -> str:
    """What the next message of a stream carries as ``prev``: SHA-256 of this token's text,
    which strict decoding makes the one text of its bytes."""
    return "sha256:" + b64url(hashlib.sha256(token.encode("ascii")).digest())
