"""Password hashes for people signing in to the pages: scrypt (RFC 7914) from the standard
library, with a random 16-byte salt per hash and the cost parameters stored beside it, so
they can be raised later without invalidating existing hashes.

N=2^15, r=8, p=1 costs 32 MiB and a few tens of milliseconds per attempt: the OWASP
Password Storage Cheat Sheet's scrypt minimum is N=2^17 with r=8, p=1 or an equivalent
trade of memory for time; this setting keeps a login quick on a small server, and failed
logins are rate limited besides (api/login.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
_LENGTH = 32


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=_MAXMEM, dklen=_LENGTH)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (salt and hash base64)."""
    salt = os.urandom(16)
    digest = _derive(password, salt, _N, _R, _P)
    return "$".join(["scrypt", str(_N), str(_R), str(_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash (unknown user) the same
    work is done against a throwaway salt, so timing does not tell who exists."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = base64.b64decode(digest)
        actual = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        _derive(password, b"\0" * 16, _N, _R, _P)
        return False
    return hmac.compare_digest(actual, expected)
