"""A stand-in for nsqcli.lib.Message that records how it was answered (archiver tests)."""


class FakeMessage:
    def __init__(self, n, body=None):
        self.id = b"%016d" % n
        self.body = body if body is not None else b"msg-%d" % n
        self.timestamp = 1_700_000_000_000_000_000 + n
        self.attempts = 1
        self.answer = None
        self.async_enabled = False

    def enable_async(self):
        self.async_enabled = True

    def has_responded(self):
        return self.answer is not None

    def finish(self):
        assert self.answer is None
        self.answer = "FIN"

    def requeue(self, time_ms=-1, backoff=True):
        assert self.answer is None
        self.answer = ("REQ", time_ms, backoff)
