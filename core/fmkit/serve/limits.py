"""What one request may ask of the server, checked before any of it is queued: the size of each
input and of the whole request (413 past a limit), and text that is not valid Unicode (400)."""
from __future__ import annotations

from typing import Any


class InputRejected(ValueError):
    """An input the server refuses before predicting anything; ``status`` is the HTTP answer."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def input_size(value: Any) -> int:
    """The size of one raw input: characters of its strings (keys included) and bytes of its
    binary parts, through lists and mappings; numbers and the like count 1."""
    total, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (str, bytes, bytearray)):
            total += len(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        else:
            total += 1
    return total


def bad_unicode(value: Any) -> str | None:
    """Where a string of ``value`` cannot be encoded as UTF-8 (a lone surrogate such as the JSON
    escape ``\\ud800``), in words; ``None`` when all are valid."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                return f"a lone UTF-16 surrogate (\\u{ord(v[e.start]):04x}) at character {e.start}"
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return None


def check_inputs(items: list[Any], what: str, max_items: int, max_input_chars: int | None,
                 max_request_chars: int | None) -> list[int]:
    """Each input's size, after refusing the request (:class:`InputRejected`) when it has too many
    inputs, an input or the whole request is larger than its limit (413), or a string is not valid
    Unicode (400). ``what`` names the inputs in the message (``inputs``, ``files``)."""
    if len(items) > max_items:
        raise InputRejected(413, f"{len(items)} inputs in one request; the limit is {max_items} (--max-items)")
    sizes = []
    for i, item in enumerate(items):
        size = input_size(item)
        if max_input_chars is not None and size > max_input_chars:
            raise InputRejected(413, f"{what}[{i}] has {size} characters (bytes for files); the limit per input is "
                                     f"{max_input_chars} (--max-input-chars)")
        bad = bad_unicode(item)
        if bad:
            raise InputRejected(400, f"{what}[{i}] is not valid Unicode: {bad}; send text as UTF-8 without "
                                     "unpaired surrogate escapes")
        sizes.append(size)
    if max_request_chars is not None and sum(sizes) > max_request_chars:
        raise InputRejected(413, f"the request's inputs have {sum(sizes)} characters in all; the limit per request "
                                 f"is {max_request_chars} (--max-request-chars)")
    return sizes
