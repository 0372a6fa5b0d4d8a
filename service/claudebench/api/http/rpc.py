"""Calling a gRPC servicer method from an HTTP request, in-process.

The HTTP API is a transcoding of the gRPC API, not a second implementation: a route names an RPC,
the request message is built from the path, query and JSON body with protobuf's JSON mapping, the
servicer method runs exactly as for a gRPC call (its validation, store call and error mapping), and
the response message is written with protobuf's JSON mapping. A status the servicer aborts with
becomes the HTTP status of the table below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import grpc
from google.protobuf import descriptor, descriptor_pool, json_format, message, message_factory
from multidict import MultiMapping

PACKAGE = "claudebench.v1"

# google.rpc's mapping of status codes to HTTP statuses (the one grpc-gateway uses).
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class RpcAbort(grpc.aio.AbortError):
    """What a servicer's `context.abort` raises when called from HTTP: the status and message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class HttpCallContext:
    """The part of grpc.aio.ServicerContext our servicers use (`abort`), for in-process calls."""

    async def abort(self, code: grpc.StatusCode, details: str = "", *_: Any) -> NoReturn:
        raise RpcAbort(code, details)


def error_body(code: grpc.StatusCode, message_text: str) -> dict[str, Any]:
    """The JSON of an error, shaped like google.rpc.Status in Google's HTTP APIs."""
    return {"error": {"code": HTTP_STATUS[code], "status": code.name, "message": message_text}}


@dataclass(frozen=True, slots=True)
class Rpc:
    """One RPC of a servicer, callable with a request message."""

    service: str
    name: str
    servicer: object

    @property
    def method(self) -> descriptor.MethodDescriptor:
        found = descriptor_pool.Default().FindServiceByName(f"{PACKAGE}.{self.service}")
        return found.methods_by_name[self.name]

    def request_class(self) -> type[message.Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    async def call(self, request: message.Message) -> message.Message:
        handler = getattr(self.servicer, self.name)
        return cast(message.Message, await handler(request, HttpCallContext()))


def implemented(servicer: object, service: str, name: str) -> bool:
    """Whether the service defines the RPC and the servicer implements it (rather than inheriting
    the generated base class's UNIMPLEMENTED stub). RPCs of features not built yet stay off."""
    try:
        found = descriptor_pool.Default().FindServiceByName(f"{PACKAGE}.{service}")
    except KeyError:
        return False
    if name not in found.methods_by_name:
        return False
    for cls in type(servicer).__mro__:
        if name in cls.__dict__:
            generated = cls.__module__.startswith("claudebench.v1.") and cls.__module__.endswith("_grpc")
            return not generated
    return False


class BadRequest(ValueError):
    """A request the JSON mapping cannot turn into the RPC's request message."""


def _field(cls: type[message.Message], name: str) -> Any:
    """The field a query parameter names (by its proto or its JSON name), or None."""
    fields = cls.DESCRIPTOR.fields
    return next((f for f in fields if name in (f.name, f.json_name)), None)


def build_request(
    cls: type[message.Message],
    path: Mapping[str, str],
    query: MultiMapping[str],
    body: Mapping[str, Any] | None,
) -> message.Message:
    """The request message from path parameters, query parameters (repeated fields: the parameter
    repeated or comma-separated) and a JSON object body, by protobuf's JSON mapping."""
    values: dict[str, Any] = dict(body or {})
    for name in dict.fromkeys(query.keys()):
        field = _field(cls, name)
        if field is None:
            raise BadRequest(f"unknown query parameter {name!r}")
        raw = query.getall(name)
        if field.is_repeated:
            values[name] = [part for item in raw for part in item.split(",") if part]
        elif field.type == descriptor.FieldDescriptor.TYPE_BOOL:
            values[name] = raw[-1].lower() in ("1", "true", "yes")
        else:
            values[name] = raw[-1]
    values.update(path)
    try:
        return json_format.ParseDict(values, cls())
    except json_format.ParseError as exc:
        raise BadRequest(str(exc)) from None


def parse_body(text: str) -> dict[str, Any] | None:
    """A request body: empty, or a JSON object."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def to_json(reply: message.Message) -> dict[str, Any]:
    """A response message by protobuf's JSON mapping (lowerCamelCase names, enum names), with
    fields at their default value written too, so that the page need not know the defaults."""
    return json_format.MessageToDict(reply, always_print_fields_with_no_presence=True)
