"""The embedded nsqd: in memory, single process, protocol-faithful to nsqd v1.3.0.

``NSQD(NSQDOptions(...))``; ``await nsqd.start()`` binds on the running event loop and sets
``tcp_port``/``http_port``; ``await nsqd.stop()`` closes listeners and clients.
"""

from .options import VERSION, NSQDOptions
from .server import NSQD

__all__ = ["NSQD", "NSQDOptions", "VERSION"]
