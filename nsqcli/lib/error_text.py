"""Short, human texts for exceptions, shared by the library's messages and the tools' one-liners.

Imports nothing but :mod:`errno`, so the tools can use it at start-up for free.
"""

from __future__ import annotations

import errno


def error_text(exc: BaseException, daemon: str = "nsqd") -> str:
    """A short, human text for an exception (no class names for the common OS errors)."""
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused (is {daemon} running there?)"
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        return "broken pipe"
    if isinstance(exc, OSError) and exc.strerror:
        name = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{name}"
    text = str(exc).strip()
    if not text:
        cause = exc.__cause__ or exc.__context__
        if cause is not None and cause is not exc:
            return error_text(cause, daemon)
        return type(exc).__name__
    return text


def address_error_text(address: str, cause: BaseException, doing: str = "",
                       daemon: str = "nsqd") -> str:
    """``"<address> while <doing>: <what went wrong>"`` (the address once, when the cause's
    own text already names it)."""
    text = error_text(cause, daemon)
    if address in text:
        return text
    return f"{address}{' while ' + doing if doing else ''}: {text}"
