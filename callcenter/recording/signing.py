"""Signed, expiring audio links: /api/recordings/{call_id}/audio?exp=<unix seconds>&sig=<hex>.

Whoever may hear a call asks for a link (the check of who they are happens then); the link
itself needs no log-in, so a browser's <audio> element can fetch it with range requests. The
signature is HMAC-SHA256 over the call id and the expiry, with a key derived from the web
secret; a changed call id, expiry or signature is "tampered", a good one past its time "expired".
"""
from __future__ import annotations

import hashlib
import hmac


class LinkError(Exception):
    """The audio link cannot be used."""


class TamperedLink(LinkError):
    """The signature does not match the call and expiry (403)."""


class ExpiredLink(LinkError):
    """The link was genuine but its time is over (410)."""


def link_key(web_secret: str) -> bytes:
    """A key for audio links only, derived from the web secret (never the secret itself)."""
    return hmac.new(web_secret.encode(), b"callcenter recording links v1", hashlib.sha256).digest()


def sign(call_id: str, exp: int, secret: bytes) -> str:
    return hmac.new(secret, f"{call_id}\n{exp}".encode(), hashlib.sha256).hexdigest()


def audio_url(call_id: str, exp: int, secret: bytes) -> str:
    return f"/api/recordings/{call_id}/audio?exp={exp}&sig={sign(call_id, exp, secret)}"


def verify(call_id: str, exp: str, sig: str, secret: bytes, now: float) -> None:
    """Return quietly for a genuine, unexpired link; raise TamperedLink or ExpiredLink."""
    if not exp.isascii() or not exp.isdigit() or len(exp) > 12:
        raise TamperedLink("expiry is not a time")
    if not sig.isascii() or not hmac.compare_digest(sign(call_id, int(exp), secret), sig.lower()):
        raise TamperedLink("signature does not match")
    if now >= int(exp):
        raise ExpiredLink("link expired")
