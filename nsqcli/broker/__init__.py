"""Embedded nsqd and nsqlookupd for development and tests (never imported by nsqcli.lib)."""
