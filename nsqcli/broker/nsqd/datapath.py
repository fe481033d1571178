"""DataPath: the directory an embedded nsqd keeps its metadata and disk queues in.

Layout (our own, documented; nsqd's files are not read or written)::

    nsqcli-nsqd.json            topics and channels (not #ephemeral ones) and their paused state
    queues/<topic>/             the topic's disk queue (see diskqueue.py)
    queues/<topic>+<channel>/   each channel's disk queue ('+' is never part of an NSQ name)

The metadata file is replaced atomically (temporary file, fsync, rename), like nsqd's nsqd.dat:
it is written when topics or channels are created, deleted, paused or unpaused, and at stop.
The directory is locked (flock) while an nsqd uses it, as nsqd does. Without a configured path an
nsqd gets a temporary directory, kept across its own stop/start and removed by :meth:`remove`
(or when the object is collected, or at interpreter exit).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

METADATA_FILE = "nsqcli-nsqd.json"
QUEUES_DIR = "queues"


class DataPathError(Exception):
    """The data path cannot be used (missing, locked by another nsqd, unreadable metadata)."""


@dataclass
class ChannelMetadata:
    name: str
    paused: bool = False


@dataclass
class TopicMetadata:
    name: str
    paused: bool = False
    channels: list[ChannelMetadata] = field(default_factory=list)


class DataPath:
    def __init__(self, path: str = "") -> None:
        self.temporary = not path
        if self.temporary:
            path = tempfile.mkdtemp(prefix="nsqcli-nsqd-")
            self._cleanup = weakref.finalize(self, shutil.rmtree, path, True)
        self.path = os.path.abspath(path)
        self._lock_fd: int | None = None

    def queue_path(self, topic: str, channel: str | None = None) -> str:
        name = topic if channel is None else f"{topic}+{channel}"
        return os.path.join(self.path, QUEUES_DIR, name)

    # ---------------------------------------------------------------- locking

    def lock(self) -> None:
        if not os.path.isdir(self.path):
            raise DataPathError(f"data path {self.path} is not a directory")
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DataPathError(f"data path {self.path} is in use by another nsqd") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def remove(self) -> None:
        """Delete a temporary data path (a configured one is never deleted)."""
        self.unlock()
        if self.temporary:
            self._cleanup()

    # ---------------------------------------------------------------- metadata

    def load(self) -> list[TopicMetadata]:
        path = os.path.join(self.path, METADATA_FILE)
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read())
            return [TopicMetadata(t["name"], bool(t.get("paused")),
                                  [ChannelMetadata(c["name"], bool(c.get("paused")))
                                   for c in t.get("channels") or []])
                    for t in data["topics"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataPathError(f"cannot read {path}: {error}") from None

    def save(self, topics: list[TopicMetadata]) -> None:
        data = {"topics": [{"name": t.name, "paused": t.paused,
                            "channels": [{"name": c.name, "paused": c.paused}
                                         for c in t.channels]}
                           for t in topics]}
        final = os.path.join(self.path, METADATA_FILE)
        tmp = f"{final}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps(data, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
