"""The embedded nsqd: single process, protocol-faithful to nsqd v1.3.0.

``NSQD(NSQDOptions(...))``; ``await nsqd.start()`` loads the data path and binds on the running
event loop, setting ``tcp_port``/``http_port``; ``await nsqd.stop()`` closes listeners and
clients and writes the queues out; ``nsqd.remove_data()`` then deletes a temporary data path.
"""

from .options import VERSION, NSQDOptions
from .server import NSQD

__all__ = ["NSQD", "NSQDOptions", "VERSION"]
