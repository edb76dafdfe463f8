"""The client's address, believing ``X-Forwarded-For`` only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_ip(remote_addr: str, forwarded_for: str | None, trusted: list[Network]) -> str | None:
    """The first address, from the right, that is not one of our trusted proxies.

    A client can put anything into ``X-Forwarded-For``; only the entries appended
    by proxies we trust are believed, so a spoofed header never helps.
    """
    remote = _address(remote_addr or "")
    if remote is None:
        return None
    if not forwarded_for or not any(remote in net for net in trusted):
        return str(remote)
    hops = [_address(part) for part in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop is None:
            return str(remote)  # a malformed chain: believe only the proxy that talked to us
        if not any(hop in net for net in trusted):
            return str(hop)
    return str(hops[0])
