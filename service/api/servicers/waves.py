"""WaveService: the violence waves detected in the log, from the waves projection."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as stats_pb
from incident_registry_client.proto.incidents.v1 import wave_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import wave_service_pb2_grpc as pb_grpc

from projections.runtime import Projections
from projections.waves import NAME, micros
from projections.waves_model import WaveRow, query_waves
from service.api.catch_up import wait_until_caught_up
from service.api.fields import FieldReader
from service.api.page_tokens import encode_page_token, read_page_request
from service.api.timestamps import stamp
from service.areas import AreaCatalog
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_AREAS = 100
AREA_KINDS = {
    stats_pb.AREA_KIND_MUNICIPALITY: "municipality",
    stats_pb.AREA_KIND_POLICE_ZONE: "police_zone",
}
AREA_NUMBERS = {name: number for number, name in AREA_KINDS.items()}


class WaveServicer(pb_grpc.WaveServiceServicer):
    """Serves WaveService from the waves projection."""

    def __init__(
        self, projections: Projections, backend: EventStoreBackend, catalog: AreaCatalog
    ) -> None:
        self._projections = projections
        self._backend = backend
        self._catalog = catalog

    async def ListWaves(  # noqa: N802 - gRPC method name
        self, request: pb.ListWavesRequest, context: Context
    ) -> pb.ListWavesResponse:
        """Return a page of waves, by first shooting, once the model includes `min_position`."""
        reader = FieldReader()
        codes = list(request.area_codes)
        kind = AREA_KINDS.get(request.area_kind, "")
        reader.check(
            request.area_kind == stats_pb.AREA_KIND_UNSPECIFIED or bool(kind),
            "area_kind",
            "must be MUNICIPALITY or POLICE_ZONE",
        )
        reader.check(bool(kind) or not codes, "area_kind", "is required when area_codes are given")
        reader.check(len(codes) <= MAX_AREAS, "area_codes", f"must list at most {MAX_AREAS} areas")
        municipalities, zones = self._areas(kind, codes, reader)
        from_time = reader.time(request, "from_time", required=False)
        to_time = reader.time(request, "to_time", required=False)
        if from_time is not None and to_time is not None:
            reader.check(to_time >= from_time, "to_time", "must not be before from_time")
        selection = _fingerprint(request)
        after, limit = read_page_request(
            request.page_size,
            request.page_token,
            selection,
            reader,
            max_size=MAX_PAGE_SIZE,
            default_size=DEFAULT_PAGE_SIZE,
            other_selection="was issued for another selection; list again",
        )
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, rows = await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                query_waves(
                    tx,
                    municipalities=municipalities,
                    police_zones=zones,
                    # Alone, the kind selects the waves detected in that kind of area.
                    area_kind=kind if not codes else "",
                    from_time=from_time,
                    to_time=to_time,
                    after=after,
                    limit=limit + 1,
                ),
            )
        )
        page = rows[:limit]
        more = len(rows) > limit
        return pb.ListWavesResponse(
            waves=[violence_wave(row) for row in page],
            next_page_token=(
                encode_page_token(
                    (micros(page[-1].first_occurred_at), str(page[-1].wave_id)), selection
                )
                if more
                else ""
            ),
            position=position,
        )

    def _areas(
        self, kind: str, codes: list[str], reader: FieldReader
    ) -> tuple[list[str], list[str]]:
        """Municipality and police zone codes to match; a zone also matches its municipalities."""
        if kind == "municipality":
            reader.municipalities(codes, "area_codes", self._catalog)
            return codes, []
        if not kind:
            return [], []
        municipalities: list[str] = []
        for index, code in enumerate(codes):
            zone = self._catalog.police_zones.get(code)
            if reader.check(
                zone is not None, f"area_codes[{index}]", f"unknown police zone {code!r}"
            ):
                assert zone is not None
                municipalities.extend(zone.municipalities)
        return municipalities, codes


def violence_wave(row: WaveRow) -> pb.ViolenceWave:
    """The API form of a wave of the read model."""
    return pb.ViolenceWave(
        wave_id=str(row.wave_id),
        area_kind=AREA_NUMBERS[row.area_kind],
        area_code=row.area_code,
        first_occurred_at=stamp(row.first_occurred_at),
        last_occurred_at=stamp(row.last_occurred_at),
        incident_ids=[str(i) for i in row.incident_ids],
        detected_incident_ids=[str(i) for i in row.detected_incident_ids],
        min_shootings=row.min_shootings,
        window_hours=row.window_hours,
        trigger_position=row.trigger_position,
        detected_position=row.detected_position,
    )


def _fingerprint(request: pb.ListWavesRequest) -> str:
    """What a page token is bound to: the selection, without paging and min_position."""
    selection = pb.ListWavesRequest()
    selection.CopyFrom(request)
    selection.ClearField("page_size")
    selection.ClearField("page_token")
    selection.ClearField("min_position")
    return hashlib.sha256(selection.SerializeToString(deterministic=True)).hexdigest()[:16]
