"""Shared plumbing of the command-line tools: click options, console, exit codes, runner."""
