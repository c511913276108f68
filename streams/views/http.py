"""HTTP helpers the views share: capped request bodies, JSON objects, and client errors."""

from __future__ import annotations

import ipaddress
import json
from typing import Any


async def read_capped(request: Any, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes (declared or actual)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = b""
    async for chunk in request.content.iter_chunked(4096):
        body += chunk
        if len(body) > limit:
            return None
    return body


def canonical_ip(text: str) -> str | None:
    """`text` as one IP address's canonical form, None when it is none: brackets and a port dropped
    (`[2001:db8::1]:443`, `203.0.113.5:51234`, as some proxies append), an IPv4-mapped IPv6 address
    as IPv4 (`::ffff:127.0.0.1`). One client is then one key however its address is written."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def client_address(request: Any, trusted_proxies: frozenset[str]) -> str:
    """Where a request comes from, for throttling: its peer address; or, when the peer is a trusted
    proxy (canonical forms, `canonical_ip`), the last X-Forwarded-For address that is not one (read
    right to left, as only the hops the trusted proxies appended can be believed: a client may send
    any header of its own). A hop that is no address (`unknown`) ends the walk at the last proxy."""
    peer = canonical_ip(request.remote or "") or (request.remote or "unknown")
    if peer not in trusted_proxies:
        return peer
    for hop in reversed([hop for line in request.headers.getall("X-Forwarded-For", []) for hop in line.split(",")]):
        address = canonical_ip(hop)
        if address is None:
            return peer
        if address not in trusted_proxies:
            return address
    return peer


def address_group(address: str) -> str:
    """The key a client is throttled by: an IPv4 address as it is; an IPv6 address as its /64
    (`2001:db8:1:2::/64`), as a host is commonly given a whole /64 and may send from any address in it
    (each one a fresh key, never throttled, if counted one by one). Anything else (`unknown`) as it is.
    `address` is one `client_address` answered (canonical)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


class BadRequest(ValueError):
    """A client error; the message says what is wrong in the client's terms."""


def json_object(body: bytes, shape: str = "") -> dict[str, Any]:
    """A request body as a JSON object, or BadRequest saying why not (`shape` hints at the form)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest("body is not JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object" + (f": {shape}" if shape else ""))
    try:  # a lone surrogate ("\ud800") is valid JSON that no page, webhook or Kafka key can encode later
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("body has a lone surrogate (\\ud800-\\udfff) where text belongs") from None
    return data
