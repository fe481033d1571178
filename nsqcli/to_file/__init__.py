"""``nsq-to-file``: topics -> archive files."""
