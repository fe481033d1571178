"""nsq-pub (placeholder until its issue lands)."""

import sys


def main() -> None:
    print("nsq-pub: not yet implemented", file=sys.stderr)
    sys.exit(1)
