"""``nsqcli topic ...`` / ``nsqcli channel ...``: create, delete, empty, pause, unpause and list
topics and channels across a cluster through nsqd's and nsqlookupd's HTTP API, as nsqadmin does.

``plan.py`` decides which calls go where and what each answer means (pure); ``cluster.py`` asks
the daemons and carries a plan out; ``confirm.py`` asks before messages are destroyed;
``command.py`` holds the click groups mounted in the umbrella ``nsqcli``.
"""
