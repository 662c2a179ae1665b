"""The last line of defence for secrets: whatever reaches the user's screen or logs passes through here.

Tokens are kept out of messages where they are made (http.redact, no token in any exception text); this
also catches what slips past: any JWT-shaped string, and every secret this process was given.
"""

from __future__ import annotations

import re

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
# The password in a URL's user-info (https://user:password@host) is a credential wherever it is printed;
# the user name is kept, as a reader needs it to see what is wrong.
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/?#@\s:]*):[^/?#@\s]*@")
_secrets: set[str] = set()


def without_userinfo(text: str) -> str:
    """https://user:password@host -> https://user:***@host, in any text."""
    return URL_PASSWORD.sub(r"\1:***@", text)


def register(secret: str | None) -> None:
    """Remember a secret (client secret, offline token) so that no output can carry it."""
    if secret and len(secret) >= 8:
        _secrets.add(secret)


def scrub(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    return without_userinfo(BEARER.sub(r"\1<token>", JWT_SHAPE.sub("<token>", text)))
