pytest_plugins = ["nsqcli.testing"]
