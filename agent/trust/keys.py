"""The gateway's Ed25519 identity on disk.

Made once at commissioning (``hpagent key init``), never overwritten, never leaves the gateway,
and readable by the service user alone: a key file that others may read is refused, as ssh
refuses one.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from agent.trust.jws import public_key_from_jwk


class KeyFileError(Exception):
    """A key file that is missing, unsafe or unreadable; the message says what to do."""


def init_key(path: Path) -> Ed25519PrivateKey:
    """Create a new key at ``path`` (mode 0600); refuse if the file exists."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists: refusing to overwrite the gateway's identity (move it "
                        "away yourself if you really mean to replace it)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist: run 'hpagent key init' first") from None
    except PermissionError:
        raise KeyFileError(f"{path} is not readable by this user") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is accessible by others (mode {stat.S_IMODE(mode):o}): "
                        f"run 'chmod 600 {path}'")
    try:
        key = load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file, a JWK (JSON) file, or a private key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    text = data.strip()
    try:
        if text.startswith(b"{"):
            return public_key_from_jwk(json.loads(text))
        if b"PRIVATE KEY" in text:
            return load_private_key(path).public_key()
        key = load_pem_public_key(text)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not an Ed25519 public key (PEM or JWK): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
