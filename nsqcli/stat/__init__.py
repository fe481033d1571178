"""nsq-stat: a live view of an NSQ cluster (``nsqcli stat``)."""
