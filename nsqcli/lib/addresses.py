"""Parsing of nsqd TCP addresses as users write them: ``"host:port"``, ``"[::1]:4150"``, ``("host", port)``."""

from __future__ import annotations

from typing import Iterable, Union

Address = Union[str, "tuple[str, int]"]


def parse_address(address: Address) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` / ``(host, port)`` -> ``(host, port)``; ValueError if malformed."""
    return _parse(address)


def _parse(address: object) -> tuple[str, int]:  # anything at run time: TypeError names it
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
        return _checked(host, port, address)
    if not isinstance(address, str):
        raise TypeError(f"an nsqd address must be 'host:port', not {type(address).__name__}")
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"invalid nsqd address {address!r}: expected 'host:port' such as '127.0.0.1:4150'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"invalid nsqd address {address!r}: write IPv6 addresses as '[::1]:4150'")
    return _checked(host, int(port_text), address)


def _checked(host: object, port: object, original: object) -> tuple[str, int]:
    if not isinstance(host, str) or not host:
        raise ValueError(f"invalid nsqd address {original!r}: empty host")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"invalid nsqd address {original!r}: port must be 1..65535")
    return host, port


def parse_addresses(addresses: Address | Iterable[Address], what: str = "nsqd_tcp_addresses") -> list[tuple[str, int]]:
    """A single address or a sequence of them -> a de-duplicated list of ``(host, port)``."""
    single_pair = isinstance(addresses, tuple) and len(addresses) == 2 and isinstance(addresses[1], int)
    items: Iterable[object] = [addresses] if isinstance(addresses, str) or single_pair else addresses
    if isinstance(items, (bytes, dict)) or not hasattr(items, "__iter__"):
        raise TypeError(f"{what} must be an address or a list of addresses, not {type(items).__name__}")
    parsed: list[tuple[str, int]] = []
    for address in items:
        hp = _parse(address)
        if hp not in parsed:
            parsed.append(hp)
    if not parsed:
        raise ValueError(f"{what} must name at least one nsqd address")
    return parsed


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
