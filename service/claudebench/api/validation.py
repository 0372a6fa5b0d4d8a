"""Request validation: every RPC checks its input here before touching Redis."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

from google.protobuf import duration_pb2, struct_pb2

from claudebench.api.codec import compact_json, struct_to_fields

MAX_TEXT_CHARS = 500
MAX_ID_CHARS = 128
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_KEYS = 256
MAX_METADATA_KEY_CHARS = 128
MAX_RESULT_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 4096
MAX_REASON_CHARS = 500
DEFAULT_PRIORITY = 50
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_CLAIM = 100
DEFAULT_INSTANCE_CAPACITY = 10
MAX_INSTANCE_CAPACITY = 1000
MAX_ROLES = 32
# Objects and arrays nested in metadata, result, params or config (the top level counts): 20 keeps
# every reply that carries one (WatchTasksResponse.event.task.metadata: 3 message levels per
# object) far inside the 100-level decoding limit of protobuf's Python (upb and pure-Python), C++
# and Node (protobufjs) runtimes.
MAX_NESTING = 20
# A payload's protobuf encoding is at most ~6 times its JSON text (a number in an array: 11 bytes
# against 2), so an encoding larger than this multiple of a JSON limit is refused unconverted.
_WIRE_PER_JSON_BYTE = 8
# Positions in page tokens: beyond any real count, and a whole number for Redis and JSON alike.
MAX_PAGE_POSITION = 2**53 - 1

# Letters, digits and . _ : @ - only: ids become parts of Redis keys, and braces would change a
# Redis Cluster hash slot.
_ID = re.compile(r"[A-Za-z0-9._:@-]+")


class InvalidArgument(ValueError):
    """A request field is invalid; the message says which and why."""


def identifier(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field} is {len(value)} characters long; the limit is {MAX_ID_CHARS}")
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value!r} may contain only letters, digits and the characters . _ : @ -"
        )
    return value


def task_text(value: str, field: str = "text") -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"{field} is {len(value)} characters long; the limit is {MAX_TEXT_CHARS}")
    return value


def in_range(value: int, field: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArgument(f"{field} must be between {low} and {high}, got {value}")
    return value


def priority(value: int) -> int:
    return in_range(value, "priority", 0, 100)


def bounded_count(value: int, field: str, default: int, maximum: int) -> int:
    """0 means the default; otherwise 1..maximum."""
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise InvalidArgument(f"{field} must be between 1 and {maximum}, got {value}")
    return value


def _check_tree(value: struct_pb2.Value, field: str, depth: int) -> None:
    """Refuse non-finite numbers (JSON has none) and nesting beyond MAX_NESTING; `depth` counts
    the objects and arrays around `value`."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            raise InvalidArgument(
                f"{field} holds {value.number_value}: NaN and Infinity are not JSON numbers "
                "(send a string or null instead)"
            )
    elif kind == "struct_value":
        _check_struct(value.struct_value, field, depth + 1)
    elif kind == "list_value":
        _check_depth(field, depth + 1)
        for item in value.list_value.values:
            _check_tree(item, field, depth + 1)


def _check_depth(field: str, depth: int) -> None:
    if depth > MAX_NESTING:
        raise InvalidArgument(
            f"{field} nests objects and arrays more than {MAX_NESTING} levels deep (the limit, "
            "so that every client can decode the replies that carry it)"
        )


def _check_struct(struct: struct_pb2.Struct, field: str, depth: int) -> None:
    _check_depth(field, depth)
    for item in struct.fields.values():
        _check_tree(item, field, depth)


def json_payload(payload: struct_pb2.Value | struct_pb2.Struct, field: str, max_json_bytes: int) -> None:
    """A Struct or Value a client sent, checked before anything converts it: its encoded size
    (cheap: refuses a huge payload unconverted), then nesting and non-finite numbers. The exact
    JSON size is checked by the caller after conversion."""
    if payload.ByteSize() > _WIRE_PER_JSON_BYTE * max_json_bytes:
        raise InvalidArgument(f"{field} is larger than {max_json_bytes} bytes as JSON")
    if isinstance(payload, struct_pb2.Struct):
        _check_struct(payload, field, 1)
    else:
        _check_tree(payload, field, 0)


def metadata(struct: struct_pb2.Struct, field: str = "metadata") -> dict[str, str]:
    """The metadata (or another Struct merged key by key, e.g. progress) as {key: JSON value},
    within the documented limits."""
    # The key count first: counting a map costs nothing, converting 280k keys most of a second.
    if len(struct.fields) > MAX_METADATA_KEYS:
        raise InvalidArgument(f"{field} has {len(struct.fields)} keys; the limit is {MAX_METADATA_KEYS}")
    json_payload(struct, field, MAX_METADATA_BYTES)
    fields = struct_to_fields(struct)
    for key in fields:
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidArgument(
                f"{field} keys must be 1..{MAX_METADATA_KEY_CHARS} characters, got {key[:40]!r}"
            )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in fields.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgument(f"{field} is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return fields


def duration_ms(value: duration_pb2.Duration, field: str) -> int:
    """A Duration as whole milliseconds; a malformed one (nanos outside ±999,999,999, or of
    another sign than seconds) is refused rather than normalised."""
    if not -999_999_999 <= value.nanos <= 999_999_999 or (value.seconds * value.nanos < 0):
        raise InvalidArgument(
            f"{field} is not a valid Duration: nanos must be within ±999,999,999 and have the sign of seconds"
        )
    return value.ToMilliseconds()


def result_json(text: str) -> str:
    if len(text.encode()) > MAX_RESULT_BYTES:
        raise InvalidArgument(f"result is larger than {MAX_RESULT_BYTES} bytes as JSON")
    return text


def error_message(value: str) -> str:
    if not value.strip():
        raise InvalidArgument("error must describe the failure (it is empty)")
    if len(value) > MAX_ERROR_CHARS:
        raise InvalidArgument(f"error is {len(value)} characters long; the limit is {MAX_ERROR_CHARS}")
    return value


def reason(value: str) -> str:
    if len(value) > MAX_REASON_CHARS:
        raise InvalidArgument(f"reason is {len(value)} characters long; the limit is {MAX_REASON_CHARS}")
    return value


def encode_page_token(after_seq: int, filter_key: str) -> str:
    raw = compact_json({"after": after_seq, "filter": filter_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, filter_key: str) -> int | None:
    """The position a page token continues after; None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = decoded["after"]
        token_filter = decoded["filter"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidArgument(
            "page_token is malformed; pass the next_page_token of a previous page"
        ) from None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_PAGE_POSITION:
        raise InvalidArgument("page_token is malformed; pass the next_page_token of a previous page")
    if token_filter != filter_key:
        raise InvalidArgument("page_token belongs to a listing with different filters")
    return after
