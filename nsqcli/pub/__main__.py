"""``python -m nsqcli.pub``."""

from nsqcli.pub.fast import main

if __name__ == "__main__":
    main()
