"""RegistryClient: the synchronous client, owning one gRPC channel.

Its methods are made from the `_rpcs` builders (see `_methods`): keyword-only arguments,
frozen dataclasses in and out, a deadline on every call, automatic request ids on writes and
retries where they are safe (see `retry`). The asyncio twin is `aio.AsyncRegistryClient`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Protocol, Self, TypeVar

import grpc
from google.protobuf.message import Message

from incident_registry_client._call import Call, Pages, StreamCall
from incident_registry_client._channel import ChannelOptions, TlsOptions, TokenSource
from incident_registry_client._methods import adopt, qualify
from incident_registry_client._rpcs import (
    assets,
    audit,
    commands,
    event_log,
    gangs,
    incidents,
    listings,
    portable,
    projections,
    statistics,
)
from incident_registry_client._settings import DEFAULT_TIMEOUT, client_settings
from incident_registry_client.errors import handle_rpc_error
from incident_registry_client.retry import RetryPolicy
from incident_registry_client.streams import Stream

__all__ = ["RegistryClient"]

P = ParamSpec("P")
T = TypeVar("T")


class _Transport(Protocol):
    def _invoke(self, call: Call[T]) -> T: ...

    def _iterate(self, pages: Pages[T]) -> Iterator[T]: ...

    def _stream(self, call: StreamCall[T]) -> Stream[T]: ...


def unary(build: Callable[P, Call[T]]) -> Callable[Concatenate[_Transport, P], T]:
    """A method that builds a call with `build` and runs it."""

    def method(self: _Transport, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._invoke(build(*args, **kwargs))

    adopt(method, build, lambda item: item)
    return method


def paged(build: Callable[P, Pages[T]]) -> Callable[Concatenate[_Transport, P], Iterator[T]]:
    """A method that iterates over the items of every page `build` describes."""

    def method(self: _Transport, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iterate(build(*args, **kwargs))

    adopt(method, build, lambda item: Iterator[item])  # type: ignore[valid-type]
    return method


def streaming(build: Callable[P, StreamCall[T]]) -> Callable[Concatenate[_Transport, P], Stream[T]]:
    """A method that opens the resuming stream `build` describes."""

    def method(self: _Transport, /, *args: P.args, **kwargs: P.kwargs) -> Stream[T]:
        return self._stream(build(*args, **kwargs))

    adopt(method, build, lambda item: Stream[item])  # type: ignore[valid-type]
    return method


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class RegistryClient:
    """A synchronous client of the Incident Registry, owning its channel.

    `target` is "host:port". Plaintext is used for loopback targets or with `insecure=True`;
    any other target gets TLS (`tls=TlsOptions(...)`, the system's roots by default).
    `call_credentials` (TLS only) or `bearer_token` (a string, or a function called for every
    call) authenticate calls; `actor` is sent as x-actor and recorded with every event;
    `metadata` adds headers to every call. `timeout` is the default deadline in seconds of
    each attempt of a unary call (a method's `timeout` overrides it); `retry` bounds retries.

    Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: TlsOptions | None = None,
        insecure: bool = False,
        call_credentials: grpc.CallCredentials | None = None,
        bearer_token: TokenSource | None = None,
        actor: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        options: ChannelOptions = (),
    ) -> None:
        self._settings = client_settings(
            target,
            tls=tls,
            insecure=insecure,
            call_credentials=call_credentials,
            bearer_token=bearer_token,
            actor=actor,
            metadata=metadata,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            options=options,
        )
        self._channel = self._settings.channel.open()
        self._unary_callables: dict[str, grpc.UnaryUnaryMultiCallable[Message, Any]] = {}

    @property
    def target(self) -> str:
        """The address the client connects to."""
        return self._settings.channel.target

    @property
    def secure(self) -> bool:
        """Whether the channel uses TLS."""
        return self._settings.channel.credentials is not None

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------

    def _invoke(self, call: Call[T]) -> T:
        rpc = self._unary_callables.get(call.method)
        if rpc is None:
            rpc = self._channel.unary_unary(
                call.method, request_serializer=_serialize, response_deserializer=call.decode
            )
            self._unary_callables[call.method] = rpc
        settings = self._settings
        failures = 0
        while True:
            try:
                response = rpc(
                    call.request,
                    timeout=settings.deadline(call.timeout),
                    metadata=settings.metadata.pairs(),
                )
            except grpc.RpcError as err:
                error = handle_rpc_error(err)
                failures += 1
                delay = settings.retry.delay(error, failures, read=call.read)
                if delay is None:
                    raise error from err
                time.sleep(delay)
            else:
                return call.convert(response)

    def _iterate(self, pages: Pages[T]) -> Iterator[T]:
        call: Call[Any] | None = pages.first
        while call is not None:
            page = self._invoke(call)
            yield from pages.items(page)
            call = pages.following(page)

    def _stream(self, call: StreamCall[T]) -> Stream[T]:
        rpc = self._channel.unary_stream(
            call.method, request_serializer=_serialize, response_deserializer=call.decode
        )

        def open_call(request: Message, timeout: float | None) -> Any:
            return rpc(request, timeout=timeout, metadata=self._settings.metadata.pairs())

        return Stream(call, open_call, self._settings.retry)

    # --- IncidentService -------------------------------------------------------------------
    report_shooting = unary(incidents.report_shooting)
    report_shootings = unary(incidents.report_shootings)
    revise_casualties = unary(incidents.revise_casualties)
    amend_incident = unary(incidents.amend_incident)
    attribute_to_gang = unary(incidents.attribute_to_gang)
    retract_attribution = unary(incidents.retract_attribution)
    link_incidents = unary(incidents.link_incidents)
    erase_personal_data = unary(incidents.erase_personal_data)
    get_incident = unary(incidents.get_incident)

    # --- GangService -----------------------------------------------------------------------
    register_gang = unary(gangs.register_gang)
    add_gang_alias = unary(gangs.add_gang_alias)
    get_gang = unary(gangs.get_gang)

    # --- PoliceCommandService --------------------------------------------------------------
    unify_police_command = unary(commands.unify_police_command)
    end_unified_command = unary(commands.end_unified_command)
    get_unified_command = unary(commands.get_unified_command)

    # --- AssetRecoveryService --------------------------------------------------------------
    record_asset_seizure = unary(assets.record_asset_seizure)
    confiscate_assets = unary(assets.confiscate_assets)
    reinvest_assets = unary(assets.reinvest_assets)
    release_assets = unary(assets.release_assets)
    get_asset_case = unary(assets.get_asset_case)

    # --- EventLogService -------------------------------------------------------------------
    read_stream = unary(event_log.read_stream)
    read_all = unary(event_log.read_all)
    get_head = unary(event_log.get_head)
    subscribe = streaming(event_log.subscribe)
    iter_stream = paged(event_log.iter_stream)
    iter_all = paged(event_log.iter_all)
    export_events = streaming(portable.export_events)
    import_events = unary(portable.import_events)

    # --- StatisticsService, AssetStatisticsService ------------------------------------------
    get_area_statistics = unary(statistics.get_area_statistics)
    get_incident_breakdown = unary(statistics.get_incident_breakdown)
    watch_statistics = streaming(statistics.watch_statistics)
    get_asset_recovery_statistics = unary(statistics.get_asset_recovery_statistics)

    # --- IncidentQueryService, WaveService, CommandQueryService -----------------------------
    list_incidents = unary(listings.list_incidents)
    iter_incidents = paged(listings.iter_incidents)
    list_waves = unary(listings.list_waves)
    iter_waves = paged(listings.iter_waves)
    list_unified_commands = unary(listings.list_unified_commands)
    iter_unified_commands = paged(listings.iter_unified_commands)
    get_municipality_commands = unary(listings.get_municipality_commands)

    # --- ProjectionAdminService ------------------------------------------------------------
    list_projections = unary(projections.list_projections)
    pause_projection = unary(projections.pause_projection)
    resume_projection = unary(projections.resume_projection)
    rebuild_projection = unary(projections.rebuild_projection)
    reset_projection = unary(projections.reset_projection)

    # --- AuditService ----------------------------------------------------------------------
    list_audit_entries = unary(audit.list_audit_entries)
    iter_audit_entries = paged(audit.iter_audit_entries)


qualify(RegistryClient)
