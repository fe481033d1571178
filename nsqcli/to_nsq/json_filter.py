"""nsq-to-nsq's JSON filters, with the semantics of Go's ``nsq_to_nsq`` (pure: bytes in, bytes out).

* ``--require-json-field F``: only a JSON object with the key F passes.
* ``--require-json-value V`` (with F): F's value must be the string V, or, when V reads as a
  number (Go's ``strconv.ParseFloat``: ``3``, ``-1.5``, ``2e3``, ``inf``, ``0x1p4``), a JSON number
  equal to it as a float64. Any other value (true, null, an object, a number when V is not
  one) does not pass.
* ``--whitelist-json-field K`` (repeatable): the message is re-marshalled with only those keys
  (those present), compactly with sorted keys, as Go's ``json.Marshal`` of a map writes it; a
  float without a fraction is written as an integer, as Go does. Without a whitelist a passing
  message is relayed byte for byte.

With any of them set, a body that is not a JSON object is dropped, as in Go. JSON is read as
Go's ``encoding/json`` reads it: invalid UTF-8 is replaced, not refused; NaN/Infinity tokens and
numbers beyond float64 are refused. One difference on purpose: a message without the required
field is filtered out even when a value is required (Go then returns an error, so go-nsq requeues
it with backoff, again and again, until ``max_attempts`` drops it).
"""

from __future__ import annotations

import json
import math
import re
from enum import Enum
from typing import Any, Sequence

__all__ = ["FilterResult", "JsonFilter", "go_parse_float"]


class FilterResult(Enum):
    NOT_JSON = "not a JSON object"
    FILTERED = "filtered out"


_DECIMAL = re.compile(r"[+-]?(\d+(_\d+)*\.?(\d+(_\d+)*)?|\.\d+(_\d+)*)([eE][+-]?\d+(_\d+)*)?")
_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F_]*\.?[0-9a-fA-F_]*)[pP][+-]?\d+")


def go_parse_float(text: str) -> float | None:
    """``text`` as Go's ``strconv.ParseFloat(text, 64)`` reads it, or None when Go refuses it
    (no surrounding spaces; decimal, hexadecimal with a ``p`` exponent, Inf, Infinity, NaN)."""
    try:
        if _SPECIAL.fullmatch(text):
            return float(text)
        if _DECIMAL.fullmatch(text):
            value = float(text)
        elif _HEX.fullmatch(text) and re.search(r"[0-9a-fA-F]", text[2:text.lower().index("p")]):
            value = float.fromhex(text.replace("_", ""))
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return None if math.isinf(value) else value  # out of range: Go's ErrRange


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Go: "cannot unmarshal number ... into float64"
        raise ValueError(f"{text} is out of float64's range")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    try:
        float(value)
    except OverflowError:  # Go decodes every number into a float64
        raise ValueError(f"{text[:20]}... is out of float64's range") from None
    return value


def _go_int(value: Any) -> Any:
    """Go's whitelist writes a float64 without a fraction as an int64."""
    if type(value) is float and value.is_integer() and -2.0 ** 63 <= value < 2.0 ** 63:
        return int(value)
    return value


class JsonFilter:
    """``__call__(body)`` returns the body to relay (bytes), or why it is dropped
    (:class:`FilterResult`). See the module docstring."""

    def __init__(self, require_field: str | None = None, require_value: str | None = None,
                 whitelist: Sequence[str] = ()) -> None:
        if require_value is not None and not require_field:
            raise ValueError("--require-json-value needs --require-json-field")
        self.require_field = require_field or None
        self.require_value = require_value if require_value else None  # "": no value, as Go
        self.require_number = (None if self.require_value is None
                               else go_parse_float(self.require_value))
        self.whitelist = list(dict.fromkeys(whitelist))

    def __repr__(self) -> str:
        return (f"<JsonFilter field={self.require_field!r} value={self.require_value!r} "
                f"whitelist={self.whitelist}>")

    def __call__(self, body: bytes) -> bytes | FilterResult:
        document = self._decode(body)
        if document is None:
            return FilterResult.NOT_JSON
        if self.require_field is not None and not self._passes(document):
            return FilterResult.FILTERED
        if not self.whitelist:
            return body
        kept = {key: _go_int(document[key]) for key in self.whitelist if key in document}
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escaped in the input: keep it escaped
            return json.dumps(kept, sort_keys=True, separators=(",", ":")).encode("ascii")

    @staticmethod
    def _decode(body: bytes) -> dict[str, Any] | None:
        try:
            document = json.loads(body.decode("utf-8", "replace"), parse_constant=_refuse_constant,
                                  parse_float=_finite_float, parse_int=_finite_int)
        except (ValueError, RecursionError):
            return None
        return document if isinstance(document, dict) else None

    def _passes(self, document: dict[str, Any]) -> bool:
        if self.require_field not in document:
            return False
        wanted = self.require_value
        if wanted is None:
            return True
        value = document[self.require_field]
        if isinstance(value, str):
            return value == wanted
        number = self.require_number
        if number is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return float(value) == number
