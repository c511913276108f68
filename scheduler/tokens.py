"""Bearer tokens at rest: salted scrypt hashes, and a cache so requests do not pay for scrypt.

A roster holds `token_hash: scrypt$N$r$p$SALT$HASH` (N, r, p decimal; SALT and HASH unpadded
urlsafe base64), made by `finsentry token hash`. scrypt is slow on purpose (tens of milliseconds),
so a stolen roster does not give the tokens back; the price is paid once per token per process:
`TokenCache` remembers which roster entry a presented token matched, keyed by a keyed BLAKE2b
digest of the token (the key is made at start and never leaves memory), so the token itself is not
kept and the cache is useless to anyone who reads memory without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict

MIN_LENGTH = 24  # characters: 24 random urlsafe characters are 144 bits
# Defaults for new hashes: about 50-100 ms on one core, 16 MiB of memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


class TokenFormatError(ValueError):
    """A stored hash that is not `scrypt$N$r$p$SALT$HASH`."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def short_token(token: str) -> str | None:
    """Why `token` is too weak to use, or None."""
    if len(token) < MIN_LENGTH:
        return f"the token is {len(token)} characters; at least {MIN_LENGTH} are required"
    return None


def hash_token(token: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The `scrypt$...` line for a roster; a fresh random salt each time."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """(N, r, p, salt, hash); raises TokenFormatError naming what is wrong."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise TokenFormatError("expected scrypt$N$r$p$SALT$HASH (make one with `finsentry token hash`)")
    if not all(x.isdigit() for x in parts[1:4]):
        raise TokenFormatError("N, r and p must be decimal integers")
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * r * n > _MAXMEM:
        raise TokenFormatError(f"N={n}, r={r}, p={p}: N must be a power of two and 128*r*N at most 64 MiB")
    try:
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise TokenFormatError("SALT and HASH must be urlsafe base64") from None
    if len(salt) < 8 or len(digest) != _DKLEN:
        raise TokenFormatError(f"the salt must be at least 8 bytes and the hash {_DKLEN} bytes")
    return n, r, p, salt, digest


def verify_hash(presented: bytes, stored: str) -> bool:
    """The slow check, in constant time over the digest. `stored` was checked when the roster was read."""
    n, r, p, salt, digest = parse_hash(stored)
    computed = hashlib.scrypt(presented, salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM)
    return hmac.compare_digest(computed, digest)


class TokenCache:
    """Presented token (as a keyed digest) -> the roster reference it matched (a stored hash, or
    where a plaintext token is), so the hashes of everyone else need not be computed either.

    Only successes are kept, at most `size` of them (least recently used go first). The caller
    checks that the remembered reference is still in its roster, so an edited one is verified afresh."""

    def __init__(self, size: int = 1024) -> None:
        self._key = secrets.token_bytes(32)
        self._size = size
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def digest(self, presented: bytes) -> bytes:
        """The keyed digest a token is known by here: it tells tokens apart without keeping them."""
        return hashlib.blake2b(presented, key=self._key, digest_size=32).digest()

    def lookup(self, presented: bytes) -> str | None:
        """The reference `presented` last matched, or None."""
        key = self.digest(presented)
        with self._lock:
            known = self._verified.get(key)
            if known is not None:
                self._verified.move_to_end(key)
            return known

    def remember(self, presented: bytes, stored: str) -> None:
        key = self.digest(presented)
        with self._lock:
            self._verified[key] = stored
            self._verified.move_to_end(key)
            while len(self._verified) > self._size:
                self._verified.popitem(last=False)


CACHE = TokenCache()
