"""A weak registry of live Readers and Writers, so ``nsq.run()`` can close them all on a signal.

Clients register themselves when created and unregister when closed; the registry holds weak
references only, so a client that the application drops is not kept alive by it.
"""

from __future__ import annotations

import weakref
from typing import Any

_live: "weakref.WeakSet[Any]" = weakref.WeakSet()


def register(client: Any) -> None:
    """Record ``client`` (anything with a ``close()`` method) as live."""
    _live.add(client)


def unregister(client: Any) -> None:
    """Forget ``client`` (it was closed); unknown clients are ignored."""
    _live.discard(client)


def live_clients() -> list[Any]:
    """The clients registered and not yet closed or garbage-collected, oldest first not guaranteed."""
    return list(_live)
