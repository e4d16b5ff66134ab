"""Bearer-token authentication shared by the receivers and the API.

Tokens come from ``extensions.bearertokenauth`` (``token`` or ``tokens``) in the config, so
they can be injected with ``${env:...}``. Comparison is constant-time per token so response
timing does not reveal how much of a guess was right.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Iterable

_PREFIX = "bearer "


class TokenAuth:
    """Accepts ``Authorization: Bearer <token>`` for any of the configured tokens."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(t.encode() for t in tokens if t)
        if not self._tokens:
            raise ValueError("bearer token auth needs at least one non-empty token")

    def allows(self, authorization: str | None) -> bool:
        """True when the header carries one of the tokens."""
        if not authorization or not authorization.lower().startswith(_PREFIX):
            return False
        given = authorization[len(_PREFIX) :].strip().encode()
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(given, token)
        return ok


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS server context from PEM files (TLS 1.2+)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
