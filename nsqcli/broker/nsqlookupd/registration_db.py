"""nsqlookupd's registration database: which producers (nsqd peers) serve which topic/channel.

A registration is ``(category, key, subkey)``: ``("client", "", "")`` for every identified peer,
``("topic", topic, "")`` and ``("channel", topic, channel)``. Each maps to the producers that
registered it, keyed by peer id (the peer's remote address). Registrations outlive their
producers (as in nsqlookupd), so /topics keeps listing a topic after its nsqd went away until the
topic is deleted. Pure and clock-injected: no I/O, no global time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

CLIENT = "client"
TOPIC = "topic"
CHANNEL = "channel"
ANY = "*"


@dataclass(frozen=True)
class Registration:
    category: str
    key: str = ""
    subkey: str = ""

    def matches(self, category: str, key: str, subkey: str) -> bool:
        return (
            self.category == category
            and (key == ANY or self.key == key)
            and (subkey == ANY or self.subkey == subkey)
        )


@dataclass
class PeerInfo:
    """What an nsqd told us in IDENTIFY, plus when it was last heard from (clock seconds)."""

    id: str
    remote_address: str
    hostname: str
    broadcast_address: str
    tcp_port: int
    http_port: int
    version: str
    last_update: float = 0.0

    def to_json(self) -> dict:
        """The producer shape of /lookup (nsqlookupd's PeerInfo JSON, in its field order)."""
        return {
            "remote_address": self.remote_address,
            "hostname": self.hostname,
            "broadcast_address": self.broadcast_address,
            "tcp_port": self.tcp_port,
            "http_port": self.http_port,
            "version": self.version,
        }


@dataclass
class Producer:
    """One peer's membership in one registration (tombstones are per topic registration)."""

    peer: PeerInfo
    tombstoned_at: float | None = field(default=None)

    def tombstone(self, now: float) -> None:
        self.tombstoned_at = now

    def is_tombstoned(self, lifetime: float, now: float) -> bool:
        return self.tombstoned_at is not None and now - self.tombstoned_at < lifetime


class RegistrationDB:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._registrations: dict[Registration, dict[str, Producer]] = {}

    def add_registration(self, registration: Registration) -> None:
        self._registrations.setdefault(registration, {})

    def add_producer(self, registration: Registration, producer: Producer) -> bool:
        """Add ``producer`` unless its peer is already there; True when it was added."""
        producers = self._registrations.setdefault(registration, {})
        if producer.peer.id in producers:
            return False
        producers[producer.peer.id] = producer
        return True

    def remove_producer(self, registration: Registration, peer_id: str) -> tuple[bool, int]:
        """Remove the peer's producer; returns (removed, producers left). The key stays."""
        producers = self._registrations.get(registration)
        if producers is None:
            return False, 0
        removed = producers.pop(peer_id, None) is not None
        return removed, len(producers)

    def remove_registration(self, registration: Registration) -> None:
        self._registrations.pop(registration, None)

    def find_registrations(self, category: str, key: str, subkey: str) -> list[Registration]:
        return [r for r in self._registrations if r.matches(category, key, subkey)]

    def find_producers(self, category: str, key: str, subkey: str) -> list[Producer]:
        """Producers of every matching registration, one per peer (first seen wins)."""
        seen: dict[str, Producer] = {}
        for registration, producers in self._registrations.items():
            if registration.matches(category, key, subkey):
                for peer_id, producer in producers.items():
                    seen.setdefault(peer_id, producer)
        return list(seen.values())

    def lookup_registrations(self, peer_id: str) -> list[Registration]:
        return [r for r, producers in self._registrations.items() if peer_id in producers]

    def remove_peer(self, peer_id: str) -> list[Registration]:
        """Drop a disconnected peer from every registration; returns those it was removed from."""
        removed = []
        for registration in self.lookup_registrations(peer_id):
            if self.remove_producer(registration, peer_id)[0]:
                removed.append(registration)
        return removed

    def active(
        self, producers: Iterable[Producer], inactive_timeout: float, tombstone_lifetime: float
    ) -> list[Producer]:
        """Producers heard from within ``inactive_timeout`` s and not tombstoned (lifetime s)."""
        now = self.clock()
        return [
            p for p in producers
            if now - p.peer.last_update <= inactive_timeout
            and not p.is_tombstoned(tombstone_lifetime, now)
        ]

    def snapshot(self) -> dict[Registration, list[Producer]]:
        """A copy of the whole map (for /debug)."""
        return {r: list(p.values()) for r, p in self._registrations.items()}


def keys(registrations: Iterable[Registration]) -> list[str]:
    return [r.key for r in registrations]


def subkeys(registrations: Iterable[Registration]) -> list[str]:
    return [r.subkey for r in registrations]
