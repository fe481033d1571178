"""``nsqcli`` / ``python -m nsqcli``: the umbrella command (placeholder until the tools issue lands)."""

import sys


def main() -> None:
    print("nsqcli: not yet implemented", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
