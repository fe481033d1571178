"""``python -m nsqcli.to_file``."""

from nsqcli.to_file.command import main

if __name__ == "__main__":
    main()
