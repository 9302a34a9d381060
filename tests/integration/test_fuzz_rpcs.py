"""Property-based fuzzing of every RPC the server registers, at the protobuf wire level.

Requests are encoded here, field by field from each method's input descriptor, and sent as
raw bytes: out-of-range integers, unknown enum numbers, huge and non-UTF-8 strings, nested
messages, repeated fields, unknown field numbers, truncated and random bytes. Every answer
must be OK or one of the precise error codes (never INTERNAL or UNKNOWN), a rejected write
must leave the log's head where it was, and the server must keep serving.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
)

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.harness import ServerHarness

TARGET_REQUESTS = 10_000
"""The fewest fuzzed requests a run sends, across every RPC."""
STREAM_EXAMPLES = 40
"""Examples per server-streaming RPC (each may wait for its deadline)."""
STREAM_DEADLINE = 0.25
"""Seconds a server stream is read before the test cuts it."""
STREAM_MESSAGES = 3
"""Messages read from a server stream before the test cancels it."""
UNARY_DEADLINE = 10.0
"""Seconds a unary call may take: it must be answered well within, never cut."""
MAX_DEPTH = 3
"""Nesting depth below which messages are still filled in."""
HUGE = 100_000

ERROR_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
UNARY_CODES = ERROR_CODES | {grpc.StatusCode.OK}
STREAM_CODES = UNARY_CODES | {grpc.StatusCode.DEADLINE_EXCEEDED}
"""A stream may also end at the deadline the test gives it (the server is not stopped here)."""
OPEN_SERVICES = frozenset({health.SERVICE_NAME, reflection.SERVICE_NAME})

_VARINT = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_ENUM,
    }
)
_ZIGZAG = frozenset({FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64})
_FIXED32 = frozenset(
    {FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_FLOAT}
)
_FIXED64 = frozenset(
    {FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_DOUBLE}
)


# -- the wire format ------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """`value` as a protobuf varint (negative numbers in ten bytes, as int64 encodes them)."""
    value %= 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """The key of a field: its number and wire type."""
    return varint((number << 3) | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, message)."""
    return tag(number, 2) + varint(len(payload)) + payload


def zigzag(value: int) -> int:
    """`value` zigzag-encoded, as sint64 fields carry it."""
    value = max(-(1 << 63), min(value, (1 << 63) - 1))
    return ((value << 1) ^ (value >> 63)) % (1 << 64)


# -- strategies -----------------------------------------------------------------------------

UUIDS = (
    "00000000-0000-0000-0000-000000000000",
    str(UUID(int=1, version=4)),
    "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "not-a-uuid",
)
WORDS = ("", " ", "21004", "brussels", "incident", "gang", "ShootingReported", "EUR", "\x00")

integers: st.SearchStrategy[int] = st.one_of(
    st.integers(-5, 50),
    st.sampled_from(
        [
            0,
            -1,
            2**31 - 1,
            2**31,
            -(2**31),
            2**32,
            2**53 + 1,
            2**63 - 1,
            -(2**63),
            2**64 - 1,
            1_700_000_000,
            253_402_300_800,
            -62_135_596_801,
            999_999_999,
            1_000_000_000,
        ]
    ),
    st.integers(-(2**63), 2**64 - 1),
)

texts: st.SearchStrategy[bytes] = st.one_of(
    st.text(max_size=24).map(str.encode),
    st.sampled_from(UUIDS + WORDS).map(str.encode),
    st.one_of(st.integers(0, 2_000), st.sampled_from([128, 129, 10_000, 10_001, 65_536, HUGE])).map(
        lambda n: b"x" * n
    ),
    st.binary(max_size=24),  # mostly invalid UTF-8
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4).map(
        lambda s: s.encode("utf-8", "surrogatepass")
    ),
    st.text(
        st.characters(codec="utf-8", categories=["Lo", "So", "Zs", "Cc", "Mn"]), max_size=64
    ).map(str.encode),
)


def enum_numbers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    """Declared numbers of the field's enum, and numbers it does not declare."""
    assert field.enum_type is not None
    declared = [value.number for value in field.enum_type.values]
    return st.one_of(st.sampled_from(declared), st.integers(-3, 1000), integers)


def scalar(field: FieldDescriptor) -> st.SearchStrategy[bytes]:
    """One encoded occurrence of a non-message field."""
    number = field.number
    kind = field.type
    if kind == FieldDescriptor.TYPE_ENUM:
        return enum_numbers(field).map(lambda v: tag(number, 0) + varint(v))
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.integers(0, 3).map(lambda v: tag(number, 0) + varint(v))
    if kind in _VARINT:
        return integers.map(lambda v: tag(number, 0) + varint(v))
    if kind in _ZIGZAG:
        return integers.map(lambda v: tag(number, 0) + varint(zigzag(v)))
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32).map(lambda v: tag(number, 5) + struct.pack("<f", v))
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.one_of(st.floats(), st.floats(-90, 90), st.floats(-180, 180)).map(
            lambda v: tag(number, 1) + struct.pack("<d", v)
        )
    if kind in _FIXED32:
        return st.integers(0, 2**32 - 1).map(lambda v: tag(number, 5) + struct.pack("<I", v))
    if kind in _FIXED64:
        return st.integers(0, 2**64 - 1).map(lambda v: tag(number, 1) + struct.pack("<Q", v))
    if kind == FieldDescriptor.TYPE_STRING:
        return texts.map(lambda v: length_delimited(number, v))
    return st.binary(max_size=64).map(lambda v: length_delimited(number, v))


_messages: dict[tuple[str, int], st.SearchStrategy[bytes]] = {}


def message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[bytes]:
    """Encoded messages of `descriptor`: each field absent or set, repeated ones 0-4 times."""
    key = (descriptor.full_name, depth)
    if key in _messages:
        return _messages[key]
    if depth >= MAX_DEPTH:
        strategy: st.SearchStrategy[bytes] = st.just(b"")
    else:
        parts = [field_values(field, depth) for field in descriptor.fields]
        strategy = st.tuples(*parts).map(b"".join) if parts else st.just(b"")
    _messages[key] = strategy
    return strategy


def field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[bytes]:
    """Encoded occurrences of one field: none, one, or (when repeated) several."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        number = field.number
        nested = field.message_type
        assert nested is not None
        one = st.deferred(lambda: message(nested, depth + 1)).map(
            lambda v: length_delimited(number, v)
        )
    elif field.type == FieldDescriptor.TYPE_GROUP:
        return st.just(b"")
    else:
        one = scalar(field)
    if field.is_repeated:
        return st.lists(one, max_size=4).map(b"".join)
    return st.one_of(st.just(b""), one)


def unknown_field() -> st.SearchStrategy[bytes]:
    """A field the schema does not declare, of any wire type (some malformed)."""
    return st.tuples(
        st.one_of(st.integers(1, 40), st.integers(1000, 2**29 - 1)),
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]),
        st.binary(max_size=16),
    ).map(lambda t: tag(t[0], t[1]) + (varint(len(t[2])) if t[1] == 2 else b"") + t[2])


def mutate(valid: bytes, how: int, where: int, junk: bytes) -> bytes:
    """A variant of `valid` encoded bytes, as damaged by mutation `how`."""
    if how == 0 or not valid:
        return valid
    cut = where % (len(valid) + 1)
    if how == 1:  # truncated
        return valid[:cut]
    if how == 2:  # a byte flipped
        flipped = bytearray(valid)
        flipped[where % len(valid)] ^= 0xFF
        return bytes(flipped)
    if how == 3:  # junk spliced in
        return valid[:cut] + junk + valid[cut:]
    return valid + junk  # junk appended


def overriding(template: bytes, descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """`template` (a valid request) with one or two fields overridden by arbitrary values.

    The parser keeps the last occurrence of a singular field and appends to a repeated one, so
    the fields appended after the template replace or extend its own.
    """
    fields = list(descriptor.fields)
    one = st.sampled_from(fields).flatmap(lambda field: field_values(field, 0))
    return st.lists(one, min_size=1, max_size=2).map(lambda parts: template + b"".join(parts))


def requests(method: MethodDescriptor, template: bytes | None) -> st.SearchStrategy[bytes]:
    """Raw requests for `method`: schema-shaped ones, damaged ones, unknown fields, noise,
    and (given a valid `template`) valid requests with a field or two overridden."""
    shaped = message(method.input_type)
    if template is not None:
        shaped = st.one_of(shaped, overriding(template, method.input_type))
    damaged = st.builds(
        mutate, shaped, st.integers(0, 4), st.integers(0, 2**16), st.binary(min_size=1, max_size=8)
    )
    with_unknown = st.tuples(shaped, unknown_field()).map(lambda t: t[0] + t[1])
    return st.one_of(shaped, damaged, with_unknown, st.binary(max_size=256))


# -- calls ----------------------------------------------------------------------------------


@dataclass
class Fuzzer:
    """Sends raw requests to one server and checks each answer."""

    channel: grpc.Channel
    sent: int = 0
    last_head: int = 0

    def head(self) -> int:
        """The log's head, as GetHead answers it."""
        stub = event_log_service_pb2_grpc.EventLogServiceStub(self.channel)
        reply = stub.GetHead(event_log_service_pb2.GetHeadRequest(), timeout=UNARY_DEADLINE)
        return int(reply.position)

    def unary(self, path: str, raw: bytes) -> grpc.StatusCode:
        """Send `raw` to a unary RPC; its status code."""
        call: Callable[..., bytes] = self.channel.unary_unary(path)
        self.sent += 1
        try:
            call(raw, timeout=UNARY_DEADLINE, metadata=ACTOR_METADATA)
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    def stream(self, path: str, raw: bytes) -> grpc.StatusCode:
        """Send `raw` to a server-streaming RPC; read a few messages, then cut the stream."""
        multi: Any = self.channel.unary_stream(path)
        call = multi(raw, timeout=STREAM_DEADLINE, metadata=ACTOR_METADATA)
        self.sent += 1
        try:
            for count, _ in enumerate(call, start=1):
                if count >= STREAM_MESSAGES:
                    call.cancel()
                    return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK


def registered_methods(channel: grpc.Channel) -> list[MethodDescriptor]:
    """Every RPC of every registry service the server lists by reflection."""
    names = ProtoReflectionDescriptorDatabase(channel).get_services()
    pool = descriptor_pool.Default()
    return [
        method
        for name in sorted(names)
        if name not in OPEN_SERVICES
        for method in pool.FindServiceByName(name).methods
    ]


def writes(method: MethodDescriptor) -> bool:
    """Whether `method` may append to the log (a write command, or an import)."""
    return "request_id" in method.input_type.fields_by_name or method.name == "ImportEvents"


def templates(incidents: Any, gangs: Any) -> dict[str, bytes]:
    """Valid requests of some write and read RPCs, on entities created here."""
    incident_id = checks.new_incident(incidents)
    other_id = checks.new_incident(incidents)
    gang_id = checks.new_gang(gangs)
    valid: dict[str, Message] = {
        "IncidentService.ReportShooting": b.shooting(),
        "IncidentService.ReviseCasualties": b.casualties(incident_id),
        "IncidentService.AttributeToGang": b.attribution(incident_id, gang_id),
        "IncidentService.RetractAttribution": b.retraction(incident_id, gang_id),
        "IncidentService.LinkIncidents": b.link(incident_id, other_id),
        "IncidentService.GetIncident": b.get_incident(incident_id),
        "GangService.RegisterGang": b.gang(),
        "GangService.AddGangAlias": b.alias(gang_id),
        "GangService.GetGang": b.get_gang(gang_id),
        "PoliceCommandService.UnifyPoliceCommand": b.unify(),
        "AssetRecoveryService.RecordAssetSeizure": b.seizure(),
    }
    return {f"incidents.v1.{name}": request.SerializeToString() for name, request in valid.items()}


def fuzz(fuzzer: Fuzzer, method: MethodDescriptor, examples: int, template: bytes | None) -> None:
    """Send `examples` generated requests to `method`, checking every answer."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    check_head = writes(method) and not method.server_streaming

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=requests(method, template))
    def one(raw: bytes) -> None:
        if method.server_streaming:
            code = fuzzer.stream(path, raw)
            assert code in STREAM_CODES, f"{path} answered {code.name} to {raw!r}"
            return
        code = fuzzer.unary(path, raw)
        assert code in UNARY_CODES, f"{path} answered {code.name} to {raw!r}"
        if check_head:
            # Nothing else writes: the head last read is the head before this request.
            before, fuzzer.last_head = fuzzer.last_head, fuzzer.head()
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                assert fuzzer.last_head == before, f"{path} wrote on INVALID_ARGUMENT: {raw!r}"

    one()


# About a minute on a quiet 2-core machine; several times that while other work shares it.
@pytest.mark.timeout(600)
def test_every_rpc_answers_arbitrary_requests_with_a_precise_code(
    server: ServerHarness, channel: grpc.Channel, incidents, gangs
) -> None:
    valid = templates(incidents, gangs)
    methods = registered_methods(channel)
    assert methods, "the server lists no registry service"
    streams = sum(1 for method in methods if method.server_streaming)
    unary = len(methods) - streams
    per_unary = math.ceil((TARGET_REQUESTS - streams * STREAM_EXAMPLES) / unary) + 5
    fuzzer = Fuzzer(channel)
    fuzzer.last_head = fuzzer.head()

    for method in methods:
        examples = STREAM_EXAMPLES if method.server_streaming else per_unary
        fuzz(fuzzer, method, examples, valid.get(method.full_name))

    assert fuzzer.sent >= TARGET_REQUESTS, f"only {fuzzer.sent} requests were sent"
    probe: Any = health_pb2_grpc.HealthStub(channel)  # its stub declares no methods
    status = probe.Check(health_pb2.HealthCheckRequest(service=""), timeout=UNARY_DEADLINE)
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    before = fuzzer.head()
    checks.new_incident(incidents)
    assert fuzzer.head() == before + 1
    read_back_everything(channel, before + 1)


def read_back_everything(channel: grpc.Channel, head: int) -> None:
    """Every event the fuzzed writes got accepted reads back, in every payload format, and
    through its stream: a write the server accepts but cannot answer for later is a bug."""
    log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    streams: set[str] = set()
    for payload_format in event_log_service_pb2.PayloadFormat.values():
        position, read = 0, 0
        while position < head:
            page = log.ReadAll(
                event_log_service_pb2.ReadAllRequest(
                    from_position=position, limit=500, payload_format=payload_format
                ),
                timeout=UNARY_DEADLINE * 4,
            )
            assert page.events, f"no events after {position} of {head}"
            read += len(page.events)
            position = page.events[-1].position
            streams.update(event.stream_id for event in page.events)
        assert read == head
    for stream_id in sorted(streams):
        reply = log.ReadStream(
            event_log_service_pb2.ReadStreamRequest(stream_id=stream_id, limit=1000),
            timeout=UNARY_DEADLINE * 4,
        )
        assert reply.events, stream_id
