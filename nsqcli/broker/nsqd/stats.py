"""/stats: nsqd's JSON shape (nsqd/stats.go, http.go doStats) and its text rendering."""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Any

from .options import VERSION

if TYPE_CHECKING:
    from .channel import Channel
    from .server import NSQD
    from .topic import Topic

#: nsqd's e2e latency result when no percentiles are configured.
NO_E2E = {"count": 0, "percentiles": None}


def channel_stats(channel: "Channel", include_clients: bool, topic_filter: str = "") -> dict[str, Any]:
    clients = ([c.stats(topic_filter) for c in channel.clients.values()]
               if include_clients else None)
    return {
        "channel_name": channel.name,
        "depth": channel.depth,
        "backend_depth": channel.backend.depth,
        "in_flight_count": len(channel.in_flight),
        "deferred_count": len(channel.deferred),
        "message_count": channel.message_count,
        "requeue_count": channel.requeue_count,
        "timeout_count": channel.timeout_count,
        "client_count": len(channel.clients),
        "clients": clients,
        "paused": channel.paused,
        "e2e_processing_latency": dict(NO_E2E),
    }


def topic_stats(topic: "Topic", channel_name: str, include_clients: bool,
                topic_filter: str = "") -> dict[str, Any] | None:
    if channel_name:
        channel = topic.channels.get(channel_name)
        if channel is None:
            return None
        channels = [channel]
    else:
        channels = [topic.channels[name] for name in sorted(topic.channels)]
    return {
        "topic_name": topic.name,
        "channels": [channel_stats(c, include_clients, topic_filter) for c in channels],
        "depth": topic.depth,
        "backend_depth": topic.backend.depth,
        "message_count": topic.message_count,
        "message_bytes": topic.message_bytes,
        "paused": topic.paused,
        "e2e_processing_latency": dict(NO_E2E),
    }


def get_stats(nsqd: "NSQD", topic_name: str = "", channel_name: str = "",
              include_clients: bool = True) -> list[dict[str, Any]] | None:
    """The ``topics`` list; None (JSON null, as nsqd) when the ``topic`` filter names no topic."""
    if topic_name:
        topic = nsqd.topics.get(topic_name)
        if topic is None:
            return None
        topics = [topic]
    else:
        topics = [nsqd.topics[name] for name in sorted(nsqd.topics)]
    out = []
    for topic in topics:
        stats = topic_stats(topic, channel_name, include_clients, topic_name)
        if stats is not None:
            out.append(stats)
    return out


def producer_stats(nsqd: "NSQD", topic_name: str) -> list[dict[str, Any]] | None:
    """Clients that published (``pub_counts`` narrowed to ``topic_name`` when given).

    nsqd leaves the list null when there is none (it appends to a nil slice).
    """
    producers = [c.stats(topic_name) for c in nsqd.clients.values() if c.pub_counts]
    return producers or None


def memory_stats() -> dict[str, int]:
    """Go runtime fields nsqd reports; the embedded broker fills in what Python can tell."""
    runs = sum(s.get("collections", 0) for s in gc.get_stats())
    return {
        "heap_objects": 0, "heap_idle_bytes": 0, "heap_in_use_bytes": 0,
        "heap_released_bytes": 0, "gc_pause_usec_100": 0, "gc_pause_usec_99": 0,
        "gc_pause_usec_95": 0, "next_gc_bytes": 0, "gc_total_runs": runs,
    }


def stats_json(nsqd: "NSQD", topic: str, channel: str, include_clients: bool,
               include_mem: bool) -> dict[str, Any]:
    topics = get_stats(nsqd, topic, channel, include_clients)
    out: dict[str, Any] = {
        "version": VERSION,
        "health": "OK",
        "start_time": nsqd.start_time,
        "topics": topics,
    }
    if include_mem:
        out["memory"] = memory_stats()
    # nsqd returns before collecting producers when the topic filter misses, and skips them
    # without include_clients
    out["producers"] = producer_stats(nsqd, topic) if include_clients and topics is not None else None
    return out


def _client_line(c: dict[str, Any]) -> str:
    port = c["remote_address"].rpartition(":")[2]
    ident = f"{c['hostname']}:{port} {c['user_agent']}"
    connected = f"{max(0, int(time.time()) - c['connect_ts'])}s"
    if c.get("pub_counts"):
        total = sum(p["count"] for p in c["pub_counts"])
        topics = ",".join(f"{p['topic']}={p['count']}" for p in c["pub_counts"])
        return f"[V2 {ident:<21}] msgs: {total:<8} topics: {topics} connected: {connected}"
    return (f"[V2 {ident:<21}] state: {c['state']} inflt: {c['in_flight_count']:<4} "
            f"rdy: {c['ready_count']:<4} fin: {c['finish_count']:<8} "
            f"re-q: {c['requeue_count']:<8} msgs: {c['message_count']:<8} connected: {connected}")


def stats_text(nsqd: "NSQD", topic: str, channel: str, include_clients: bool,
               include_mem: bool) -> str:
    data = stats_json(nsqd, topic, channel, include_clients, include_mem)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(nsqd.start_time))
    lines = [f"nsqd v{VERSION} (embedded nsqcli broker)", f"start_time {start}",
             f"uptime {max(0, int(time.time()) - nsqd.start_time)}s", "", "Health: OK"]
    if include_mem:
        lines += ["", "Memory:"] + [f"   {k:<25}\t{v}" for k, v in data["memory"].items()]
    out = "\n".join(lines) + "\n"
    out += "\nTopics: None\n" if not data["topics"] else "\nTopics:"
    for t in data["topics"] or []:
        prefix = "*P " if t["paused"] else "   "
        out += (f"\n{prefix}[{t['topic_name']:<15}] depth: {t['depth']:<5} be-depth: "
                f"{t['backend_depth']:<5} msgs: {t['message_count']:<8} e2e%: \n")
        for c in t["channels"]:
            prefix = "   *P " if c["paused"] else "      "
            out += (f"{prefix}[{c['channel_name']:<25}] depth: {c['depth']:<5} be-depth: "
                    f"{c['backend_depth']:<5} inflt: {c['in_flight_count']:<4} "
                    f"def: {c['deferred_count']:<4} re-q: {c['requeue_count']:<5} "
                    f"timeout: {c['timeout_count']:<5} msgs: {c['message_count']:<8} e2e%: \n")
            for client in c["clients"] or []:
                out += f"        {_client_line(client)}\n"
    if not data["producers"]:
        out += "\nProducers: None\n"
    else:
        out += "\nProducers:\n" + "".join(f"   {_client_line(p)}\n" for p in data["producers"])
    return out
