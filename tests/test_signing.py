"""Keys and JWS: RFC test vectors, file safety, and interop with independent JOSE libraries."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from agent.trust.jws import (
    BadToken,
    Signer,
    b64url,
    b64url_decode,
    chain_hash,
    public_jwk,
    thumbprint,
)
from agent.trust.jws import verify as verify_token
from agent.trust.keys import KeyFileError, init_key, load_private_key, load_public_key
from tests.support import hpagent

# RFC 8037 Appendix A: the Ed25519 key, its thumbprint and a signature over a known input.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
               "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")


def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))


def test_rfc8037_public_key_and_thumbprint() -> None:
    public = rfc_key().public_key()
    assert public_jwk(public)["x"] == RFC8037_X
    assert thumbprint(public) == RFC8037_THUMBPRINT


def test_rfc8037_signature_verifies() -> None:
    token, key = RFC8037_JWS, rfc_key().public_key()
    assert verify_token(token, key, typ=None) == b"Example of Ed25519 signing"
    with pytest.raises(BadToken, match="typ must be 'hpagent-message'"):  # not one of ours
        verify_token(token, key)


def test_rfc8037_signature_is_reproduced() -> None:
    """Ed25519 is deterministic: our signing input gives the RFC's signature bytes."""
    header, payload, signature = RFC8037_JWS.split(".")
    assert b64url(rfc_key().sign(f"{header}.{payload}".encode())) == signature


def test_sign_and_verify_with_kid() -> None:
    key = Ed25519PrivateKey.generate()
    token = Signer(key).sign(b'{"a":1}')
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": thumbprint(key.public_key()),
                      "typ": "hpagent-message"}
    assert verify_token(token, key.public_key()) == b'{"a":1}'


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda t: t.replace(".", "", 1), "three dot-separated parts"),
    (lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), "signature does not verify"),
    (lambda t: ".".join([t.split(".")[0], b64url(b'{"a":2}'), t.split(".")[2]]),
     "signature does not verify"),
    (lambda t: ".".join([b64url(b'{"alg":"none"}'), *t.split(".")[1:]]), "alg must be EdDSA"),
    (lambda t: t + "=", "malformed"),
    (lambda t: t.replace(".", ". ", 1), "malformed"),
    (lambda t: ".".join([b64url(b'{"alg":"EdDSA","alg":"EdDSA","typ":"hpagent-message"}'),
                         *t.split(".")[1:]]), "duplicate member"),
    (lambda t: ".".join([*t.split(".")[:2], b64url(b"x" * 63)]), "64 bytes"),
])
def test_tampered_tokens_are_rejected(mangle: object, reason: str) -> None:
    key = Ed25519PrivateKey.generate()
    token = Signer(key).sign(b'{"a":1}')
    with pytest.raises(BadToken, match=reason):
        verify_token(mangle(token), key.public_key())  # type: ignore[operator]


def test_another_gateways_key_is_named() -> None:
    token = Signer(Ed25519PrivateKey.generate()).sign(b"{}")
    with pytest.raises(BadToken, match="signed by another key"):
        verify_token(token, Ed25519PrivateKey.generate().public_key())


def test_chain_hash_is_sha256_of_the_token_text() -> None:
    # sha256("a.b.c"), computed independently (python -c "import hashlib; ...hexdigest()")
    digest = "845e30448809e2bc8958eb025bfc795235d13b077a53d0c3abbd2385170dc9b8"
    assert chain_hash("a.b.c") == "sha256:" + b64url(bytes.fromhex(digest))


def test_key_init_is_private_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gateway.key"
    key = init_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        init_key(path)
    assert load_private_key(path).public_key() == key.public_key()


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    init_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(path)


def test_missing_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="hpagent key init"):
        load_private_key(tmp_path / "nope.key")


# joserfc warns that RFC 9864 deprecates the polymorphic "EdDSA" name in favour of "Ed25519";
# RFC 8037's EdDSA is what recipients implement today, and what this project promises.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_cli_key_init_show_and_independent_verification(tmp_path: Path) -> None:
    """Given only ``hpagent key show --jwk``, jwcrypto and joserfc verify our messages."""
    key_file = tmp_path / "gateway.key"
    made = hpagent("key", "init", "--key-file", str(key_file))
    assert made.returncode == 0, made.stderr
    again = hpagent("key", "init", "--key-file", str(key_file))
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr
    shown = hpagent("key", "show", "--jwk", "--key-file", str(key_file))
    assert shown.returncode == 0, shown.stderr
    jwk_json = shown.stdout.strip()
    token = Signer(load_private_key(key_file)).sign(b'{"seq":1}')

    from jwcrypto import jwk as jwc_jwk
    from jwcrypto import jws as jwc_jws

    verifier = jwc_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jwc_jwk.JWK.from_json(jwk_json))
    assert verifier.payload == b'{"seq":1}'

    from joserfc import jws as rfc_jws
    from joserfc.jwk import OKPKey

    okp = OKPKey.import_key(json.loads(jwk_json))
    assert rfc_jws.deserialize_compact(token, okp, algorithms=["EdDSA"]).payload == b'{"seq":1}'

    pem = hpagent("key", "show", "--key-file", str(key_file))
    assert pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    pem_file = tmp_path / "gateway.pub"
    pem_file.write_text(pem.stdout)
    jwk_file = tmp_path / "gateway.jwk"
    jwk_file.write_text(jwk_json)
    assert load_public_key(pem_file) == load_public_key(jwk_file)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.binary(max_size=80))
def test_base64url_has_one_text_per_bytes(data: bytes) -> None:
    """decode(encode(x)) == x, and no other text decodes to x: not with another last character
    (unused bits), padding, or characters of the standard alphabet."""
    text = b64url(data)
    assert b64url_decode(text) == data
    variants = [text[:-1] + c for c in _ALPHABET if text and c != text[-1]]
    variants += [text + "=", text.replace("-", "+").replace("_", "/") + "", " " + text]
    for other in variants:
        if other == text:
            continue
        try:
            decoded = b64url_decode(other)
        except ValueError:
            continue
        assert decoded != data, other
