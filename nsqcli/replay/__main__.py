"""``python -m nsqcli.replay``."""

from nsqcli.replay.command import main

if __name__ == "__main__":
    main()
