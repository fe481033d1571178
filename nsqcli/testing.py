"""pytest plugin with nsqd/nsqlookupd fixtures (``pytest_plugins = ["nsqcli.testing"]``).

Placeholder: the broker issue fills in the fixtures.
"""
