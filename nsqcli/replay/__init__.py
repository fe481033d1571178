"""``nsq-replay``: archive files -> a topic."""
