"""The settings both clients are made with, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from incident_registry_client._channel import (
    CallMetadata,
    ChannelConfig,
    ChannelOptions,
    TlsOptions,
    TokenSource,
    channel_config,
)
from incident_registry_client.retry import RetryPolicy

DEFAULT_TIMEOUT = 10.0
"""Seconds each attempt of a unary call may take, unless the client or the call says."""


@dataclass(frozen=True)
class ClientSettings:
    """A client's channel, per-call metadata, default deadline and retry policy."""

    channel: ChannelConfig
    metadata: CallMetadata
    timeout: float
    retry: RetryPolicy

    def deadline(self, timeout: float | None) -> float:
        """The deadline of one attempt: the call's own, else the client's default."""
        return self.timeout if timeout is None else timeout


def client_settings(
    target: str,
    *,
    tls: TlsOptions | None,
    insecure: bool,
    call_credentials: grpc.CallCredentials | None,
    bearer_token: TokenSource | None,
    actor: str | None,
    metadata: Sequence[tuple[str, str]],
    timeout: float,
    retry: RetryPolicy,
    options: ChannelOptions,
) -> ClientSettings:
    """Check the constructor arguments of a client and decide its transport."""
    if timeout <= 0:
        msg = "timeout is a positive number of seconds"
        raise ValueError(msg)
    return ClientSettings(
        channel=channel_config(
            target,
            tls=tls,
            insecure=insecure,
            call_credentials=call_credentials,
            bearer_token=bearer_token,
            options=options,
        ),
        metadata=CallMetadata(actor=actor, bearer_token=bearer_token, extra=tuple(metadata)),
        timeout=timeout,
        retry=retry,
    )
