"""Shooting batches: many shootings reported in one call, all of them or none."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.app.base import ApplicationService, ServiceDeps
from service.app.batches import listed
from service.app.commands import ReportShooting
from service.app.incidents import Incidents
from service.app.results import WriteContext, WriteResult
from service.app.writer import Decision
from service.domain.errors import (
    FieldViolation,
    InvalidArgumentError,
    RequestIdReusedError,
    StoreUnavailableError,
)
from service.store.base import BackendUnavailableError

MAX_BATCH_REPORTS = 1000


class ShootingBatches(ApplicationService):
    """Reports batches of shootings through the ordinary command path of `Incidents`."""

    def __init__(self, deps: ServiceDeps, incidents: Incidents) -> None:
        super().__init__(deps)
        self._incidents = incidents

    async def report(
        self,
        batch: Sequence[tuple[ReportShooting, WriteContext]],
        *,
        found: Sequence[FieldViolation] = (),
    ) -> list[WriteResult]:
        """Record many shootings, all checked before any is written; one result each, in order.

        `found` are violations the caller already found (named `requests[i].<field>`); every
        violation of every shooting is reported at once, and then nothing is written. Each
        shooting is an ordinary command under its own request id, through the group-commit
        writer: one sent again replays its first result. A request id given twice in the batch,
        or already accepted for another request, fails the whole batch before anything is
        written.
        """
        violations = list(found)
        if not 1 <= len(batch) <= MAX_BATCH_REPORTS:
            msg = f"must hold 1 to {MAX_BATCH_REPORTS} shootings, not {len(batch)}"
            violations.append(FieldViolation("requests", msg))
        decisions: list[Decision] = []
        first_of: dict[str, int] = {}
        for index, (command, context) in enumerate(batch):
            prefix = f"requests[{index}]."
            try:
                decisions.append(self._incidents.shooting_decision(command, context))
            except InvalidArgumentError as err:
                violations.extend(
                    FieldViolation(prefix + v.field, v.description) for v in err.violations
                )
            request_id = context.request_id
            if request_id in first_of:
                msg = f"is given twice: requests[{first_of[request_id]}] has the same request_id"
                violations.append(FieldViolation(prefix + "request_id", msg))
            first_of.setdefault(request_id, index)
        if violations:
            raise InvalidArgumentError(listed(violations, "requests"))
        await self._check_request_ids(batch)
        outcomes = await asyncio.gather(
            *(
                self._write(command, context, decide)
                for (command, context), decide in zip(batch, decisions, strict=True)
            ),
            return_exceptions=True,
        )
        results: list[WriteResult] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # Whatever was written is replayed when the batch is sent again.
                raise outcome
            results.append(outcome)
        return results

    async def _check_request_ids(
        self, batch: Sequence[tuple[ReportShooting, WriteContext]]
    ) -> None:
        """Fail before writing anything when a request id was accepted for another request."""
        loop = asyncio.get_running_loop()
        request_ids = [context.request_id for _, context in batch]
        try:
            known = await loop.run_in_executor(
                self._deps.reads, self._deps.backend.find_requests, request_ids
            )
        except BackendUnavailableError as err:
            msg = f"event store unavailable: {err}"
            raise StoreUnavailableError(msg) from err
        for command, context in batch:
            record = known.get(context.request_id)
            if record is not None and record.fingerprint != command.fingerprint(
                context.expected_version
            ):
                raise RequestIdReusedError(context.request_id)
