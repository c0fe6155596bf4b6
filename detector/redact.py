"""Secrets out of anything logged or published: URL credentials, bearer tokens, JWTs.

Applied wherever a URL or a server's answer leaves the process as text (logs, `last_error`,
the retained stats and so Home Assistant's diagnostics), because a camera URL may carry
`user:password@`, and an API server may echo the request's Authorization header in an error.
"""

from __future__ import annotations

import re
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


def redact_url(url: str) -> str:
    """The URL without its userinfo (user:password@) and without secret query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=f"{HIDDEN}@{host}")
    return _SECRET_QUERY.sub(rf"\1{HIDDEN}", urlunsplit(parts))


def redact_text(text: str) -> str:
    """Free text (an error message, a server's answer) with credentials replaced by ***."""
    text = _USERINFO.sub(rf"\g<scheme>{HIDDEN}@", text)
    text = _JWT.sub(HIDDEN, text)
    text = _BEARER.sub(rf"\1\2{HIDDEN}", text)
    return _SECRET_QUERY.sub(rf"\1{HIDDEN}", text)
