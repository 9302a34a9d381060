"""ProjectionAdminService: seeing and steering the read models.

Pausing, resuming, rebuilding and resetting set a state, so repeating one (as a retry after
UNAVAILABLE does) leaves the same state; they are not retried after a deadline.
"""

from __future__ import annotations

from incident_registry_client._call import Call, method_path, read_call, write_call
from incident_registry_client._convert.read_models import projection_info
from incident_registry_client.proto.incidents.v1 import projection_admin_service_pb2 as pb
from incident_registry_client.types.projections import ProjectionInfo


def _path(method: str) -> str:
    return method_path(pb, "ProjectionAdminService", method)


def list_projections(*, timeout: float | None = None) -> Call[tuple[ProjectionInfo, ...]]:
    """Return every projection, by name, with its state, position, the head and its lag."""
    return read_call(
        _path("ListProjections"),
        pb.ListProjectionsRequest(),
        pb.ListProjectionsResponse,
        lambda r: tuple(projection_info(p) for p in r.projections),
        timeout,
    )


def pause_projection(*, name: str, timeout: float | None = None) -> Call[ProjectionInfo]:
    """Stop applying events to a projection after the batch in hand, until resumed."""
    return write_call(
        _path("PauseProjection"),
        pb.PauseProjectionRequest(name=name),
        pb.PauseProjectionResponse,
        lambda r: projection_info(r.projection),
        timeout,
    )


def resume_projection(*, name: str, timeout: float | None = None) -> Call[ProjectionInfo]:
    """Apply events to a projection again, after a pause or once a fault's cause is fixed."""
    return write_call(
        _path("ResumeProjection"),
        pb.ResumeProjectionRequest(name=name),
        pb.ResumeProjectionResponse,
        lambda r: projection_info(r.projection),
        timeout,
    )


def rebuild_projection(*, name: str, timeout: float | None = None) -> Call[ProjectionInfo]:
    """Empty a projection's read model and rebuild it from the start of the log."""
    return write_call(
        _path("RebuildProjection"),
        pb.RebuildProjectionRequest(name=name),
        pb.RebuildProjectionResponse,
        lambda r: projection_info(r.projection),
        timeout,
    )


def reset_projection(
    *, name: str, position: int, timeout: float | None = None
) -> Call[ProjectionInfo]:
    """Empty a projection's read model and apply only the events after `position`."""
    return write_call(
        _path("ResetProjection"),
        pb.ResetProjectionRequest(name=name, position=position),
        pb.ResetProjectionResponse,
        lambda r: projection_info(r.projection),
        timeout,
    )
