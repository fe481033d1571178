"""The embedded nsqlookupd: nsqd registration over TCP (protocol V1) and the HTTP API."""

from .options import NSQLookupdOptions
from .server import NSQLookupd

__all__ = ["NSQLookupd", "NSQLookupdOptions"]
