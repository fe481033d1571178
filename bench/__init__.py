"""nsqcli's benchmark harness (issue 7): ``python -m bench --help``; see bench/README.md."""
