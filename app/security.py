"""Passwords (argon2), API keys and session tokens (stored as SHA-256), secret encryption (Fernet)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

API_KEY_PREFIX = "wai_"
_hasher = PasswordHasher()
# Verifying against this keeps the time of "unknown email" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time whether or not the user exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token (session ids, verify tokens, webhook keys)."""
    return secrets.token_urlsafe(nbytes)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 of a high-entropy token: what we store and look up, never the token itself.

    Argon2 is for low-entropy passwords; a 256-bit random key needs only a fast one-way hash,
    which also allows an indexed lookup.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def last4(secret: str) -> str:
    return secret[-4:] if len(secret) >= 8 else ""


class SecretBox:
    """Encrypts secrets at rest with a Fernet key derived (HKDF-SHA256) from INBOX_SECRET_KEY."""

    def __init__(self, secret_key: str, purpose: bytes = b"wa-inbox stored secrets v1") -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with this INBOX_SECRET_KEY") from exc

    def __repr__(self) -> str:
        return "SecretBox(<hidden>)"
