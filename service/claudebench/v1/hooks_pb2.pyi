from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PreToolUseRequest(_message.Message):
    __slots__ = ("tool", "params", "instance_id", "session_id")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    tool: str
    params: _struct_pb2.Value
    instance_id: str
    session_id: str
    def __init__(self, tool: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., instance_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class PreToolUseResponse(_message.Message):
    __slots__ = ("allow", "reason", "modified")
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_FIELD_NUMBER: _ClassVar[int]
    allow: bool
    reason: str
    modified: _struct_pb2.Value
    def __init__(self, allow: _Optional[bool] = ..., reason: _Optional[str] = ..., modified: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class PostToolUseRequest(_message.Message):
    __slots__ = ("tool", "params", "result", "success", "execution_time_ms", "instance_id", "session_id")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    tool: str
    params: _struct_pb2.Value
    result: _struct_pb2.Value
    success: bool
    execution_time_ms: int
    instance_id: str
    session_id: str
    def __init__(self, tool: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., success: _Optional[bool] = ..., execution_time_ms: _Optional[int] = ..., instance_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class PostToolUseResponse(_message.Message):
    __slots__ = ("processed", "error_count")
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    processed: bool
    error_count: int
    def __init__(self, processed: _Optional[bool] = ..., error_count: _Optional[int] = ...) -> None: ...

class ConfigureHookRequest(_message.Message):
    __slots__ = ("tool", "config")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    tool: str
    config: _struct_pb2.Struct
    def __init__(self, tool: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ConfigureHookResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _struct_pb2.Struct
    def __init__(self, config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
