"""nsq-to-file (placeholder until its issue lands)."""

import sys


def main() -> None:
    print("nsq-to-file: not yet implemented", file=sys.stderr)
    sys.exit(1)
