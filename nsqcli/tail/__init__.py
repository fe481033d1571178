"""``nsq-tail``: topics -> stdout."""
