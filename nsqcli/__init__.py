"""nsqcli: NSQ command-line tools and a pynsq-compatible client library."""

__version__ = "0.1.0"
