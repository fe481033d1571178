"""nsq-replay (placeholder until its issue lands)."""

import sys


def main() -> None:
    print("nsq-replay: not yet implemented", file=sys.stderr)
    sys.exit(1)
