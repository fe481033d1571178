"""nsq-tail (placeholder until its issue lands)."""

import sys


def main() -> None:
    print("nsq-tail: not yet implemented", file=sys.stderr)
    sys.exit(1)
