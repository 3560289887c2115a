"""The JSON documents CTMS accepts from outside: one decoder for every body (contacts, Stripe objects,
Pub/Sub envelopes and the Stripe objects inside them), with one input policy (docs/compatibility.md).

A document is refused when it is not JSON (`MalformedJsonError`), or when it is JSON that CTMS cannot
store or echo faithfully (`RefusedJsonError`):

* nested deeper than `MAX_JSON_DEPTH` arrays/objects (deep documents exhaust the recursion of every
  later step: validation, storage, encoding of the response);
* a string or object key holding a lone UTF-16 surrogate (`"\\ud800"`): it is not Unicode text, neither
  PostgreSQL nor a UTF-8 response can hold it;
* `NaN`, `Infinity`, `-Infinity`, or a number too large for a float (`1e400`): PostgreSQL's JSON refuses
  them.

msgspec enforces all but the depth on its fast path; the depth costs two byte counts, and a walk of the
decoded value only for documents holding more brackets than the limit.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import msgspec

MAX_JSON_DEPTH: Final = 64
"""Arrays and objects nested in one another, at most (a Stripe object nests about ten)."""

_decode_strictly = msgspec.json.Decoder().decode


class JsonDocumentError(Exception):
    """A body that is not an acceptable JSON document; `reason` never quotes the document."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedJsonError(JsonDocumentError):
    """Not JSON at all. `position` is the character offset of the problem when the parser knows it;
    `reason` is Python's message there (the words v3.3 clients saw)."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.position = position


class RefusedJsonError(JsonDocumentError):
    """Valid JSON that breaks the input policy above."""


TOO_DEEP: Final = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
LONE_SURROGATE: Final = "JSON string holds a lone UTF-16 surrogate, which is not Unicode text"
NOT_FINITE: Final = "JSON number is NaN, infinite, or too large"


class _NonFiniteNumber(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NonFiniteNumber(text)
    return number


def _refuse_constant(text: str) -> Any:
    raise _NonFiniteNumber(text)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` arrays/objects (iterative: the value may be deep)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if not isinstance(node, dict | list):
            continue
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _check_depth(raw: bytes, value: Any) -> Any:
    # A document cannot nest deeper than it has opening brackets: most bodies are done in two counts.
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise RefusedJsonError(TOO_DEEP)
    return value


def _decode_leniently(raw: bytes) -> Any:
    """Python's parser, for what msgspec refused: it reads UTF-16/32 bodies (as v3.3 did) and gives
    v3.3's error messages. Its extras that CTMS cannot store are refused here."""
    try:
        value = json.loads(raw, parse_float=_finite_float, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise MalformedJsonError(str(error), error.pos) from None
    except _NonFiniteNumber:
        raise RefusedJsonError(NOT_FINITE) from None
    except RecursionError:
        raise RefusedJsonError(TOO_DEEP) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedJsonError(f"invalid JSON: {error}") from None
    try:
        # Lone surrogates (escaped, or decoded with `surrogatepass`) are the strings UTF-8 cannot encode.
        json.dumps(value, ensure_ascii=False, check_circular=False).encode()
    except UnicodeEncodeError:
        raise RefusedJsonError(LONE_SURROGATE) from None
    except RecursionError:
        raise RefusedJsonError(TOO_DEEP) from None
    return value


def decode_json_document(raw: bytes) -> Any:
    """`raw` decoded as JSON under the policy of this module.

    Raises `MalformedJsonError` for text that is not JSON and `RefusedJsonError` for JSON CTMS refuses.
    """
    try:
        value = _decode_strictly(raw)
    except msgspec.DecodeError:
        value = _decode_leniently(raw)
    except RecursionError:  # nested far deeper than the limit
        raise RefusedJsonError(TOO_DEEP) from None
    return _check_depth(raw, value)
