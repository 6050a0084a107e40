"""Password hashes for console users: scrypt (RFC 7914) from the standard library.

A hash is one line, ``scrypt$<log2 n>$<r>$<p>$<salt, base64>$<key, base64>``, made by
``hazmon console passwd`` and pasted into the daemon config. Only hashes are kept;
`verify` compares in constant time and refuses anything that is not such a line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from hazmon.plant.web_users import HASH_PATTERN, hash_problem

__all__ = ["HASH_PATTERN", "hash_password", "hash_problem", "verify"]

# OWASP's scrypt minimum is N=2^17, r=8, p=1 (128 MiB); 2^15 keeps a sign-in at about 50 ms and
# 32 MiB on a small plant server while still costing an attacker 32 MiB per guess.
_LOG_N, _R, _P, _KEY = 15, 8, 1, 32


def _derive(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    n = 1 << log_n
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=_KEY)


def hash_password(password: str, log_n: int = _LOG_N) -> str:
    """A new hash of ``password`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, log_n, _R, _P)
    b64 = base64.b64encode
    return f"scrypt${log_n}${_R}${_P}${b64(salt).decode()}${b64(key).decode()}"


def verify(password: str, h: str) -> bool:
    """Whether ``password`` matches the hash ``h`` (False for a malformed hash)."""
    if hash_problem(h) is not None:
        return False
    _, log_n, r, p, salt, key = h.split("$")
    try:
        got = _derive(password, base64.b64decode(salt), int(log_n), int(r), int(p))
        want = base64.b64decode(key)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, want)
