"""error_text: the short texts of the tools' one-liners name the daemon they were talking to."""

from nsqcli.lib.error_text import address_error_text, error_text


def _wrapping(cause: BaseException, via_context: bool = False) -> BaseException:
    """An exception with no text of its own, raised from (or during) ``cause``."""
    try:
        try:
            raise cause
        except BaseException as inner:
            if via_context:
                raise RuntimeError()  # noqa: B904 - the implicit __context__ is the point
            raise RuntimeError() from inner
    except RuntimeError as outer:
        return outer


def test_a_refused_connection_names_the_daemon():
    assert error_text(ConnectionRefusedError()) == "connection refused (is nsqd running there?)"
    assert error_text(ConnectionRefusedError(), "nsqlookupd") == (
        "connection refused (is nsqlookupd running there?)")


def test_the_daemon_is_kept_when_the_text_comes_from_the_cause():
    for via_context in (False, True):
        wrapped = _wrapping(ConnectionRefusedError(), via_context)
        assert error_text(wrapped, "nsqlookupd") == "connection refused (is nsqlookupd running there?)"
        assert error_text(wrapped) == "connection refused (is nsqd running there?)"
    assert address_error_text("127.0.0.1:4161", _wrapping(ConnectionRefusedError()), "querying",
                              "nsqlookupd") == (
        "127.0.0.1:4161 while querying: connection refused (is nsqlookupd running there?)")


def test_an_exception_without_text_or_cause_is_named_by_its_class():
    assert error_text(RuntimeError(), "nsqlookupd") == "RuntimeError"
