"""``python -m nsqcli.tail``."""

from nsqcli.tail.command import main

if __name__ == "__main__":
    main()
