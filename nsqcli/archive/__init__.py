"""The on-disk archive: record formats, file names, files written by nsq-to-file and read by nsq-replay."""
