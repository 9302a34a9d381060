"""Read-your-writes for read models: wait, within the call's deadline, until they caught up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from projections.runtime import Projections
from projections.store import FAULTED, PAUSED
from service.domain.errors import NotCaughtUpError, OutOfRangeError, RuleViolatedError
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_WAIT_SECONDS = 5.0
"""How long a call without a deadline waits for a read model to catch up."""


def _check_running(projections: Projections, name: str) -> None:
    runner = projections.runner(name)
    if runner.status == FAULTED:
        msg = f"the {name} projection stopped: {runner.error}"
        raise RuleViolatedError("projection_running", f"projection/{name}", msg)


async def wait_until_caught_up(
    projections: Projections,
    names: Sequence[str],
    min_position: int,
    backend: EventStoreBackend,
    context: Context,
) -> int:
    """Return once every named projection reflects `min_position`; return the lowest position.

    FAILED_PRECONDITION when one is FAULTED (or paused short of the position), OUT_OF_RANGE
    when the position is beyond the head of the log, UNAVAILABLE when the deadline comes first.
    """
    for name in names:
        _check_running(projections, name)
    behind = [n for n in names if projections.runner(n).position < min_position]
    if behind:
        head = await asyncio.get_running_loop().run_in_executor(None, backend.head)
        if min_position > head:
            msg = f"is beyond the head of the log ({head})"
            raise OutOfRangeError("min_position", msg)
        remaining = context.time_remaining()
        timeout = DEFAULT_WAIT_SECONDS if remaining is None else max(0.0, remaining - 0.05)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for name in behind:
            runner = projections.runner(name)
            if runner.status == PAUSED and runner.position < min_position:
                msg = f"the {name} projection is paused at position {runner.position}"
                raise RuleViolatedError("projection_running", f"projection/{name}", msg)
            if not await runner.wait_for(min_position, max(0.0, deadline - loop.time())):
                _check_running(projections, name)
                msg = (
                    f"the {name} projection reflects position {runner.position}, "
                    f"not yet {min_position}; retry"
                )
                raise NotCaughtUpError(msg)
    return min(projections.runner(n).position for n in names)
