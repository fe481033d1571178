"""``nsq-pub``: stdin/files -> a topic."""
