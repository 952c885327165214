"""Secrets paperbot must keep in the store (a Slack workspace's bot and refresh tokens, which arrive by
OAuth and cannot come from the environment) are sealed with a key that does: authenticated encryption
(Fernet: AES-128-CBC with HMAC-SHA256) under a key derived from ``SLACK_CLIENT_SECRET`` with
HKDF-SHA256. A copy of Redis, a backup or a ``MONITOR`` shows no token. After the client secret is
regenerated, ``SLACK_CLIENT_SECRET_PREVIOUS`` still opens what the old one sealed, and each
installation is sealed again with the new key the first time it is read."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import SealError

INFO = b"paperbot installation tokens v1"  # the key's purpose: another use of the same secret gets another key


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class Seal:
    """Seals with the first secret; opens with any of them (the current one, then the previous)."""

    def __init__(self, *secrets: str) -> None:
        if not secrets or not secrets[0]:
            raise ValueError("a seal needs a secret")
        keys = [_fernet(s) for s in secrets if s]
        self._current, self._keys = keys[0], MultiFernet(keys)

    def seal(self, plain: bytes) -> bytes:
        """``plain``, encrypted and authenticated."""
        return self._keys.encrypt(plain)

    def open(self, sealed: bytes, what: str) -> tuple[bytes, bool]:
        """What ``seal`` sealed, and whether it was sealed with the current secret (else seal it again);
        ``SealError`` when no key opens it (the secret changed, or it was altered)."""
        try:
            return self._current.decrypt(sealed), True
        except InvalidToken:
            pass
        try:
            return self._keys.decrypt(sealed), False
        except InvalidToken:
            raise SealError(
                f"cannot open {what}: it was sealed with another SLACK_CLIENT_SECRET "
                "(set the old one as SLACK_CLIENT_SECRET_PREVIOUS), or it was altered"
            ) from None
