"""Secrets out of anything logged or published: every configured secret by its value, and by
pattern URL credentials, bearer tokens and JWTs.

Applied wherever a URL or a server's answer leaves the process as text (logs, `last_error`,
the retained stats and so Home Assistant's diagnostics), because a camera URL may carry
`user:password@`, and an API server may echo the request's Authorization header in an error.
Patterns miss a secret of another shape (a short token an API echoes, a password made of
digits): loading a configuration remembers every secret it holds (`remember`), and those
values are replaced wherever they appear, whatever their shape; `SecretFilter` applies the same
to every log record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"
# scheme://user:password@host or scheme://token@host
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s*[=:]?\s*)[A-Za-z0-9._~+/=-]{8,}")
# A JSON Web Token (three base64url parts, the first decoding to '{"')
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|pass|token|access_token|key|api_key|secret|auth)=)[^&\s]*"
)


# Secrets shorter than this are not replaced by value (they would blank every occurrence of
# a common word or number in a message); the patterns still apply to them.
MIN_SECRET_CHARS = 4
_known: tuple[str, ...] = ()
_known_lock = threading.Lock()


def remember(secrets: Iterable[object]) -> None:
    """Add configured secret values (passwords, tokens, URL credentials) to what is hidden."""
    global _known  # noqa: PLW0603 - the process's one set of secrets, read without a lock
    values = {str(value) for value in secrets if value is not None}
    with _known_lock:
        merged = set(_known) | {v for v in values if len(v) >= MIN_SECRET_CHARS}
        # Longest first: a secret containing another is replaced whole.
        _known = tuple(sorted(merged, key=len, reverse=True))


def forget_all() -> None:
    """Forget every remembered secret (tests)."""
    global _known  # noqa: PLW0603
    with _known_lock:
        _known = ()


def _hide_known(text: str) -> str:
    for secret in _known:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


class SecretFilter(logging.Filter):
    """Hides remembered secrets (and credential patterns) in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact_text(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Put a SecretFilter on every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


def redact_url(url: str) -> str:
    """The URL without its userinfo (user:password@) and without secret query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if _known:
        parts = urlsplit(_hide_known(url))
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=f"{HIDDEN}@{host}")
    return _SECRET_QUERY.sub(rf"\1{HIDDEN}", urlunsplit(parts))


def redact_text(text: str) -> str:
    """Free text (an error message, a server's answer) with credentials replaced by ***."""
    text = _hide_known(text)
    text = _USERINFO.sub(rf"\g<scheme>{HIDDEN}@", text)
    text = _JWT.sub(HIDDEN, text)
    text = _BEARER.sub(rf"\1\2{HIDDEN}", text)
    return _SECRET_QUERY.sub(rf"\1{HIDDEN}", text)
