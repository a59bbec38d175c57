from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
DIRECTION_READ: Direction
DIRECTION_WRITE: Direction
KIND_CLOSE: Kind
KIND_DATA: Kind
KIND_LOST: Kind

class Chunk(_message.Message):
    __slots__ = ["cgroup_id", "comm", "conn", "data", "dir", "fd", "kind", "local_ip", "local_port", "lost_bytes", "pid", "remote_ip", "remote_port", "tid", "time", "tls_library", "tls_version", "uid"]
    CGROUP_ID_FIELD_NUMBER: _ClassVar[int]
    COMM_FIELD_NUMBER: _ClassVar[int]
    CONN_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DIR_FIELD_NUMBER: _ClassVar[int]
    FD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOCAL_IP_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PORT_FIELD_NUMBER: _ClassVar[int]
    LOST_BYTES_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_IP_FIELD_NUMBER: _ClassVar[int]
    REMOTE_PORT_FIELD_NUMBER: _ClassVar[int]
    TID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TLS_LIBRARY_FIELD_NUMBER: _ClassVar[int]
    TLS_VERSION_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    cgroup_id: int
    comm: str
    conn: int
    data: bytes
    dir: Direction
    fd: int
    kind: Kind
    local_ip: bytes
    local_port: int
    lost_bytes: int
    pid: int
    remote_ip: bytes
    remote_port: int
    tid: int
    time: int
    tls_library: str
    tls_version: int
    uid: int
    def __init__(self, time: _Optional[int] = ..., pid: _Optional[int] = ..., tid: _Optional[int] = ..., uid: _Optional[int] = ..., comm: _Optional[str] = ..., fd: _Optional[int] = ..., conn: _Optional[int] = ..., local_ip: _Optional[bytes] = ..., local_port: _Optional[int] = ..., remote_ip: _Optional[bytes] = ..., remote_port: _Optional[int] = ..., dir: _Optional[_Union[Direction, str]] = ..., kind: _Optional[_Union[Kind, str]] = ..., tls_version: _Optional[int] = ..., lost_bytes: _Optional[int] = ..., data: _Optional[bytes] = ..., tls_library: _Optional[str] = ..., cgroup_id: _Optional[int] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ["created", "producer", "version"]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    created: int
    producer: str
    version: int
    def __init__(self, version: _Optional[int] = ..., created: _Optional[int] = ..., producer: _Optional[str] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ["chunk", "header"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    chunk: Chunk
    header: Header
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
