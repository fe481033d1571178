"""``python -m nsqcli.stat``."""

from nsqcli.stat.command import main

if __name__ == "__main__":
    main()
