"""``python -m nsqcli.to_nsq``."""

from nsqcli.to_nsq.command import main

if __name__ == "__main__":
    main()
