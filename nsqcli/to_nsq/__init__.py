"""nsq-to-nsq: relay NSQ topics to other nsqds, losing nothing (``nsqcli to-nsq``)."""
