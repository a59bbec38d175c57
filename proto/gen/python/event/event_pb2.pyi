from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
LOG_TYPE_EVENT: LogType
LOG_TYPE_HEARTBEAT: LogType
LOG_TYPE_PROCESS_LOG: LogType
PART_KIND_END: PartKind
PART_KIND_HEAD: PartKind
PART_KIND_PART: PartKind
PART_KIND_WHOLE: PartKind

class Event(_message.Message):
    __slots__ = ["body_offset", "cgroup_id", "conn_id", "container_id", "content_encoding", "content_type", "data_type", "dst_ip", "dst_port", "fd", "grpc_compressed", "grpc_length", "grpc_message", "grpc_status", "host", "incomplete", "latency_ns", "length", "message_seq", "method", "node", "original_length", "part", "part_continued", "part_index", "path", "payload", "pid", "pname", "pod_name", "pod_namespace", "request_seq", "seq", "src_ip", "src_port", "sse_data", "sse_event", "sse_id", "status", "stream_id", "tid", "timestamp", "tls_library", "transfer_encoding", "truncated", "type", "uid", "uuid", "version", "ws_close_code", "ws_opcode"]
    BODY_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CGROUP_ID_FIELD_NUMBER: _ClassVar[int]
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DST_IP_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    FD_FIELD_NUMBER: _ClassVar[int]
    GRPC_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    GRPC_LENGTH_FIELD_NUMBER: _ClassVar[int]
    GRPC_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GRPC_STATUS_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    INCOMPLETE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_NS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_SEQ_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PART_CONTINUED_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    PART_INDEX_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PNAME_FIELD_NUMBER: _ClassVar[int]
    POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    POD_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SEQ_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    SSE_DATA_FIELD_NUMBER: _ClassVar[int]
    SSE_EVENT_FIELD_NUMBER: _ClassVar[int]
    SSE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    TID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TLS_LIBRARY_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ENCODING_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WS_CLOSE_CODE_FIELD_NUMBER: _ClassVar[int]
    WS_OPCODE_FIELD_NUMBER: _ClassVar[int]
    body_offset: int
    cgroup_id: int
    conn_id: int
    container_id: str
    content_encoding: str
    content_type: str
    data_type: int
    dst_ip: str
    dst_port: int
    fd: int
    grpc_compressed: bool
    grpc_length: int
    grpc_message: str
    grpc_status: int
    host: str
    incomplete: bool
    latency_ns: int
    length: int
    message_seq: int
    method: str
    node: str
    original_length: int
    part: PartKind
    part_continued: bool
    part_index: int
    path: str
    payload: bytes
    pid: int
    pname: str
    pod_name: str
    pod_namespace: str
    request_seq: int
    seq: int
    src_ip: str
    src_port: int
    sse_data: str
    sse_event: str
    sse_id: str
    status: int
    stream_id: int
    tid: int
    timestamp: int
    tls_library: str
    transfer_encoding: str
    truncated: bool
    type: int
    uid: int
    uuid: str
    version: int
    ws_close_code: int
    ws_opcode: int
    def __init__(self, timestamp: _Optional[int] = ..., uuid: _Optional[str] = ..., src_ip: _Optional[str] = ..., src_port: _Optional[int] = ..., dst_ip: _Optional[str] = ..., dst_port: _Optional[int] = ..., pid: _Optional[int] = ..., pname: _Optional[str] = ..., type: _Optional[int] = ..., length: _Optional[int] = ..., payload: _Optional[bytes] = ..., tid: _Optional[int] = ..., fd: _Optional[int] = ..., version: _Optional[int] = ..., data_type: _Optional[int] = ..., seq: _Optional[int] = ..., conn_id: _Optional[int] = ..., stream_id: _Optional[int] = ..., request_seq: _Optional[int] = ..., latency_ns: _Optional[int] = ..., truncated: bool = ..., transfer_encoding: _Optional[str] = ..., content_encoding: _Optional[str] = ..., uid: _Optional[int] = ..., incomplete: bool = ..., ws_opcode: _Optional[int] = ..., ws_close_code: _Optional[int] = ..., host: _Optional[str] = ..., original_length: _Optional[int] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., status: _Optional[int] = ..., content_type: _Optional[str] = ..., tls_library: _Optional[str] = ..., part: _Optional[_Union[PartKind, str]] = ..., part_index: _Optional[int] = ..., body_offset: _Optional[int] = ..., message_seq: _Optional[int] = ..., part_continued: bool = ..., sse_event: _Optional[str] = ..., sse_id: _Optional[str] = ..., sse_data: _Optional[str] = ..., grpc_compressed: bool = ..., grpc_length: _Optional[int] = ..., grpc_status: _Optional[int] = ..., grpc_message: _Optional[str] = ..., node: _Optional[str] = ..., container_id: _Optional[str] = ..., cgroup_id: _Optional[int] = ..., pod_name: _Optional[str] = ..., pod_namespace: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["count", "last_seq", "message", "timestamp"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    count: int
    last_seq: int
    message: str
    timestamp: int
    def __init__(self, timestamp: _Optional[int] = ..., count: _Optional[int] = ..., message: _Optional[str] = ..., last_seq: _Optional[int] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ["event_payload", "heartbeat_payload", "log_type", "run_log"]
    EVENT_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    LOG_TYPE_FIELD_NUMBER: _ClassVar[int]
    RUN_LOG_FIELD_NUMBER: _ClassVar[int]
    event_payload: Event
    heartbeat_payload: Heartbeat
    log_type: LogType
    run_log: str
    def __init__(self, log_type: _Optional[_Union[LogType, str]] = ..., event_payload: _Optional[_Union[Event, _Mapping]] = ..., heartbeat_payload: _Optional[_Union[Heartbeat, _Mapping]] = ..., run_log: _Optional[str] = ...) -> None: ...

class LogType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class PartKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
