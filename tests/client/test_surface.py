"""The client's surface: a method for every RPC, async twins, no protobuf, documented."""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import importlib
import inspect
import pkgutil
import re
import typing

import incident_registry_client
import pytest
from google.protobuf.message import Message
from incident_registry_client import AsyncRegistryClient, AsyncStream, RegistryClient, Stream, types
from incident_registry_client.proto.incidents.v1 import common_pb2

PROTO_PACKAGE = "incident_registry_client.proto.incidents.v1"
HELPERS = {
    "iter_all",
    "iter_stream",
    "iter_incidents",
    "iter_waves",
    "iter_unified_commands",
    "iter_audit_entries",
}


def rpcs() -> list[tuple[str, str, bool]]:
    """(service, method, server_streaming) of every RPC in proto/incidents/v1."""
    package = importlib.import_module(PROTO_PACKAGE)
    found: list[tuple[str, str, bool]] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{PROTO_PACKAGE}.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                found.extend((service.name, m.name, m.server_streaming) for m in service.methods)
    return sorted(found)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def public_methods(cls: type) -> dict[str, typing.Any]:
    return {
        name: value
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


def test_every_rpc_of_every_service_has_a_method():
    services = {service for service, _, _ in rpcs()}
    assert len(services) == 12
    missing = [
        f"{service}.{method}"
        for service, method, _ in rpcs()
        if not callable(getattr(RegistryClient, snake(method), None))
    ]
    assert missing == []


def test_the_methods_are_exactly_the_rpcs_and_their_paging_helpers():
    expected = {snake(method) for _, method, _ in rpcs()} | HELPERS
    assert set(public_methods(RegistryClient)) - {"close"} == expected


def test_streaming_rpcs_return_resuming_streams():
    for _, method, streaming in rpcs():
        returned = inspect.signature(getattr(RegistryClient, snake(method))).return_annotation
        assert (typing.get_origin(returned) is Stream) == streaming, method


@pytest.mark.parametrize("name", sorted(public_methods(RegistryClient)))
def test_every_sync_method_has_an_async_twin_with_the_same_signature(name):
    sync = getattr(RegistryClient, name)
    twin = getattr(AsyncRegistryClient, name, None)
    assert twin is not None, f"AsyncRegistryClient.{name} is missing"
    sync_signature, async_signature = inspect.signature(sync), inspect.signature(twin)
    assert list(async_signature.parameters.values()) == list(sync_signature.parameters.values())

    returned = sync_signature.return_annotation
    origin = typing.get_origin(returned)
    if origin is Stream:
        assert typing.get_origin(async_signature.return_annotation) is AsyncStream
    elif origin is collections.abc.Iterator:
        assert typing.get_origin(async_signature.return_annotation) is collections.abc.AsyncIterator
    else:
        assert inspect.iscoroutinefunction(twin), f"{name} is a coroutine in the async client"
    assert typing.get_args(async_signature.return_annotation) == typing.get_args(returned) or (
        async_signature.return_annotation == returned
    )


def test_the_async_client_has_no_method_of_its_own():
    assert set(public_methods(AsyncRegistryClient)) == set(public_methods(RegistryClient))


@pytest.mark.parametrize("name", sorted(set(public_methods(RegistryClient)) - {"close"}))
def test_methods_take_keyword_arguments_only(name):
    parameters = list(inspect.signature(getattr(RegistryClient, name)).parameters.values())
    assert parameters[0].name == "self"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])
    assert parameters[-1].name == "timeout"


def _mentions_protobuf(annotation: object, seen: set[object]) -> bool:
    if annotation in seen:
        return False
    seen.add(annotation)
    if isinstance(annotation, type):
        if issubclass(annotation, Message) or annotation.__module__.startswith(PROTO_PACKAGE):
            return True
        if dataclasses.is_dataclass(annotation):
            hints = typing.get_type_hints(annotation, localns=vars(types))
            return any(_mentions_protobuf(hint, seen) for hint in hints.values())
        return False
    return any(_mentions_protobuf(arg, seen) for arg in typing.get_args(annotation))


@pytest.mark.parametrize("name", sorted(public_methods(RegistryClient)))
def test_no_protobuf_type_in_arguments_or_results(name):
    signature = inspect.signature(getattr(RegistryClient, name))
    annotations = [p.annotation for p in signature.parameters.values() if p.name != "self"]
    annotations.append(signature.return_annotation)
    assert not any(_mentions_protobuf(a, set()) for a in annotations)


def test_values_are_frozen_dataclasses_and_enums():
    for name in types.__all__:
        value = getattr(types, name)
        if isinstance(value, type) and not issubclass(value, enum.Enum):
            assert dataclasses.is_dataclass(value), name
            assert value.__dataclass_params__.frozen, name


def test_every_public_name_is_documented():
    undocumented = []
    for name in incident_registry_client.__all__:
        value = getattr(incident_registry_client, name)
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    for cls in (RegistryClient, AsyncRegistryClient):
        undocumented.extend(
            f"{cls.__name__}.{name}"
            for name, method in public_methods(cls).items()
            if not inspect.getdoc(method)
        )
    assert undocumented == []


@dataclasses.dataclass(frozen=True)
class Leaky:
    result: common_pb2.WriteResult | None


def test_the_protobuf_check_catches_messages_even_nested():
    assert _mentions_protobuf(common_pb2.WriteResult, set())
    assert _mentions_protobuf(tuple[Leaky, ...], set())
