"""nsqds from nsqlookupd ``/nodes`` (for nsq-pub given only --lookupd-http-address), and their
size limits from each nsqd's ``/config/max_msg_size`` and ``/config/max_body_size`` (nsqd does
not announce them over TCP)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from nsqcli.cli.exit_codes import AddressError
from nsqcli.lib.lookupd import ACCEPT_HEADER, LookupdError, lookup_url

TIMEOUT = 5.0


@dataclass(frozen=True)
class Node:
    tcp_address: str
    http_address: str | None


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT_HEADER})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - user URL
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def parse_nodes(body: bytes, status: int = 200) -> list[Node]:
    """The producers of a /nodes reply (v1 or pre-1.0 wrapped shape)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: "[[[[..." too deep
        raise LookupdError(f"HTTP {status} response is not JSON: {body[:100]!r}") from None
    if isinstance(data, dict) and "status_code" in data and "producers" not in data:
        status, data = data.get("status_code", status), data.get("data")
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("producers"), list):
        raise LookupdError(f"HTTP {status}: no producers list in {str(data)[:100]}")
    nodes = []
    for producer in data["producers"]:
        entry = producer if isinstance(producer, dict) else {}
        host = entry.get("broadcast_address") or entry.get("hostname")
        tcp, http = entry.get("tcp_port"), entry.get("http_port")
        if not isinstance(host, str) or not isinstance(tcp, int) or isinstance(tcp, bool):
            raise LookupdError(f"producer entry without broadcast_address/tcp_port: {producer!r:.200}")
        http_address = _join(host, http) if isinstance(http, int) and not isinstance(http, bool) else None
        node = Node(_join(host, tcp), http_address)
        if node not in nodes:
            nodes.append(node)
    return nodes


def _fetch(address: str) -> list[Node]:
    url = lookup_url(address, "", path="/nodes").replace("?topic=", "")
    try:
        status, body = _get(url)
        return parse_nodes(body, status)
    except OSError as exc:
        raise AddressError(address, getattr(exc, "reason", None) or exc, "querying /nodes",
                           daemon="nsqlookupd") from None
    except LookupdError as exc:
        raise AddressError(address, exc, "querying /nodes", daemon="nsqlookupd") from None


async def nodes_from_lookupds(addresses: list[str]) -> list[str]:
    """The TCP addresses of every lookupd's nodes (see :func:`nodes_of_lookupds`)."""
    return [node.tcp_address for node in await nodes_of_lookupds(addresses)]


async def nodes_of_lookupds(addresses: list[str]) -> list[Node]:
    """The union of every lookupd's nodes; a lookupd that fails is an error only if all fail."""
    results = await asyncio.gather(*(asyncio.to_thread(_fetch, a) for a in addresses),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors and len(errors) == len(results):
        raise errors[0]
    found: list[Node] = []
    for result in results:
        if not isinstance(result, BaseException):
            found.extend(node for node in result if node not in found)
    return found


def _config_value(http_address: str, option: str) -> int | None:
    try:
        status, body = _get(f"http://{http_address}/config/{option}")
        value = json.loads(body) if status == 200 else None
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


async def nsqd_limits(http_addresses: list[str]) -> dict[str, int]:
    """``{"max_msg_size": .., "max_body_size": ..}``: the smallest over the nsqds that answer."""
    options = ("max_msg_size", "max_body_size")
    queries = [(option, address) for address in http_addresses for option in options]
    values = await asyncio.gather(*(asyncio.to_thread(_config_value, address, option)
                                    for option, address in queries))
    limits: dict[str, int] = {}
    for (option, _), value in zip(queries, values):
        if value is not None:
            limits[option] = min(value, limits.get(option, value))
    return limits
