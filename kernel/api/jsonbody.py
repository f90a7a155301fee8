"""One JSON body parser for every endpoint: DRF views (via JSONParser) and the lean views alike.

- Depth: orjson refuses documents nested deeper than 1,024 levels (the stdlib parser recurses and,
  3,000 levels deep, raised RecursionError: a 500); such a body is a 400 like any malformed JSON.
- Strict JSON: NaN/Infinity, invalid UTF-8 and lone surrogates are refused.
- Big integers: orjson reads an integer beyond 64 bits as a float (2**64 + 1 became
  18446744073709551616.0), so a body holding a run of 19+ digits is read again by the stdlib parser,
  which keeps integers exact; the callers decide what range they accept.
- NUL: PostgreSQL cannot store it in text or jsonb (a 500 on insert), so a NUL in any key or string
  value is a 400, unless the caller checks per item itself (`allow_nul=True`: event ingestion
  rejects such an event alone).
"""

from __future__ import annotations

import json
import re

import orjson
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

MAX_DEPTH = 1024  # orjson's own limit, documented here because the API promises it
_LONG_DIGITS = re.compile(rb"\d{19,}")
_ESCAPED_NUL = b"\\u0000"


class NulCharacter(exceptions.ParseError):
    default_detail = "The request may not contain the NUL character (\\u0000)."
    error_code = "nul_character"


def _strict_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def json_body_loads(raw: bytes, *, allow_nul: bool = False):
    """The parsed body; ParseError (400 `malformed_json`) or NulCharacter (400 `nul_character`)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    if _LONG_DIGITS.search(raw):
        try:  # depth is already bounded by orjson; the stdlib parser keeps big integers exact
            data = json.loads(raw, parse_constant=_strict_constant)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    # a NUL inside a JSON string is always escaped (a raw control character is malformed JSON)
    if not allow_nul and _ESCAPED_NUL in raw and holds_nul(data):
        raise NulCharacter()
    return data


class JSONParser(BaseParser):
    """DRF's parser for application/json, through json_body_loads."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return json_body_loads(stream.read() if stream is not None else b"")
