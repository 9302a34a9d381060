"""Roles, and the one table saying which roles may call each RPC of the registry.

Every RPC registered by `service.api.server.start_server` must be in `RPC_ROLES`: a server
with an unmapped RPC refuses to start, and `tests/security` checks each entry over a real
channel and against the README's table. `admin` may call everything and is not listed.
grpc.health.v1 and reflection are not registry RPCs: they stay open to every caller.
"""

from __future__ import annotations

from collections.abc import Iterable

REPORTER = "reporter"
"""Reports shootings and corrects them (casualties, amendments, batches of shootings)."""
INVESTIGATOR = "investigator"
"""Attributes incidents to gangs, links incidents, registers gangs, records asset cases."""
COMMANDER = "commander"
"""Sets up and ends unified police commands."""
ANALYST = "analyst"
"""Reads the read models: statistics, waves, incident and command listings, aggregates."""
OPERATOR = "operator"
"""Reads the event log (streams, pages, Subscribe) and its audit trail, exports and imports it,
runs projections."""
ADMIN = "admin"
"""May call every RPC."""

ROLES: tuple[str, ...] = (REPORTER, INVESTIGATOR, COMMANDER, ANALYST, OPERATOR, ADMIN)
"""Every role, in the order the README's table lists them."""

_EVERY_ROLE = frozenset({REPORTER, INVESTIGATOR, COMMANDER, ANALYST, OPERATOR})

_INCIDENTS = "/incidents.v1.IncidentService/"
_GANGS = "/incidents.v1.GangService/"
_COMMANDS = "/incidents.v1.PoliceCommandService/"
_ASSETS = "/incidents.v1.AssetRecoveryService/"
_LOG = "/incidents.v1.EventLogService/"
_STATISTICS = "/incidents.v1.StatisticsService/"
_ADMIN = "/incidents.v1.ProjectionAdminService/"

RPC_ROLES: dict[str, frozenset[str]] = {
    # Incidents: reporters write them, investigators interpret them.
    _INCIDENTS + "ReportShooting": frozenset({REPORTER}),
    _INCIDENTS + "ReportShootings": frozenset({REPORTER}),
    _INCIDENTS + "ReviseCasualties": frozenset({REPORTER}),
    _INCIDENTS + "AmendIncident": frozenset({REPORTER}),
    _INCIDENTS + "AttributeToGang": frozenset({INVESTIGATOR}),
    _INCIDENTS + "RetractAttribution": frozenset({INVESTIGATOR}),
    _INCIDENTS + "LinkIncidents": frozenset({INVESTIGATOR}),
    _INCIDENTS + "GetIncident": frozenset({REPORTER, INVESTIGATOR, COMMANDER, ANALYST}),
    # Erasing personal data destroys it for good (and on a data subject's request, which a
    # data protection officer decides): admins only.
    _INCIDENTS + "ErasePersonalData": frozenset(),
    # Gangs.
    _GANGS + "RegisterGang": frozenset({INVESTIGATOR}),
    _GANGS + "AddGangAlias": frozenset({INVESTIGATOR}),
    _GANGS + "GetGang": frozenset({INVESTIGATOR, ANALYST}),
    # Unified police commands.
    _COMMANDS + "UnifyPoliceCommand": frozenset({COMMANDER}),
    _COMMANDS + "EndUnifiedCommand": frozenset({COMMANDER}),
    _COMMANDS + "GetUnifiedCommand": frozenset({COMMANDER, ANALYST}),
    # Seizures and asset cases.
    _ASSETS + "RecordAssetSeizure": frozenset({INVESTIGATOR}),
    _ASSETS + "ConfiscateAssets": frozenset({INVESTIGATOR}),
    _ASSETS + "ReinvestAssets": frozenset({INVESTIGATOR}),
    _ASSETS + "ReleaseAssets": frozenset({INVESTIGATOR}),
    _ASSETS + "GetAssetCase": frozenset({INVESTIGATOR, ANALYST}),
    # The event log: operators only, but its head (a number) is for every role's
    # read-your-writes waits.
    _LOG + "ReadStream": frozenset({OPERATOR}),
    _LOG + "ReadAll": frozenset({OPERATOR}),
    _LOG + "Subscribe": frozenset({OPERATOR}),
    _LOG + "GetHead": _EVERY_ROLE,
    _LOG + "ExportEvents": frozenset({OPERATOR}),
    _LOG + "ImportEvents": frozenset({OPERATOR}),
    # Read models.
    _STATISTICS + "GetAreaStatistics": frozenset({ANALYST}),
    _STATISTICS + "GetIncidentBreakdown": frozenset({ANALYST}),
    _STATISTICS + "WatchStatistics": frozenset({ANALYST}),
    "/incidents.v1.IncidentQueryService/ListIncidents": frozenset({ANALYST, INVESTIGATOR}),
    "/incidents.v1.WaveService/ListWaves": frozenset({ANALYST, COMMANDER}),
    "/incidents.v1.CommandQueryService/ListUnifiedCommands": frozenset({ANALYST, COMMANDER}),
    "/incidents.v1.CommandQueryService/GetMunicipalityCommands": frozenset({ANALYST, COMMANDER}),
    "/incidents.v1.AssetStatisticsService/GetAssetRecoveryStatistics": frozenset({ANALYST}),
    # Projection administration.
    _ADMIN + "ListProjections": frozenset({OPERATOR}),
    _ADMIN + "PauseProjection": frozenset({OPERATOR}),
    _ADMIN + "ResumeProjection": frozenset({OPERATOR}),
    _ADMIN + "RebuildProjection": frozenset({OPERATOR}),
    _ADMIN + "ResetProjection": frozenset({OPERATOR}),
    # The audit trail names the staff who recorded each event: operators only.
    "/incidents.v1.AuditService/ListAuditEntries": frozenset({OPERATOR}),
}
"""RPC full name (`/incidents.v1.Service/Method`) to the roles that may call it (and admin)."""

SEES_ACTORS = frozenset({REPORTER, INVESTIGATOR, COMMANDER, OPERATOR, ADMIN})
"""Roles that see who recorded each event (`metadata.actor`) in the histories of Get* RPCs.

An analyst-only caller gets those histories with the actor blanked: the names of the people
who record events are personal data (witnesses' names are sealed and erasable instead, see
service/app/personal_data.py).
"""


class UnmappedRpcError(LookupError):
    """Raised when an RPC is registered that `RPC_ROLES` does not list."""


def allowed_roles(method: str) -> frozenset[str]:
    """The roles that may call `method` (admin included); UnmappedRpcError if it is unlisted."""
    try:
        return RPC_ROLES[method] | {ADMIN}
    except KeyError:
        msg = f"{method} is not in service.security.roles.RPC_ROLES: say which roles may call it"
        raise UnmappedRpcError(msg) from None


def unmapped(methods: Iterable[str]) -> list[str]:
    """Those of `methods` that the table does not list."""
    return [method for method in methods if method not in RPC_ROLES]


def known_roles(roles: Iterable[str]) -> frozenset[str]:
    """`roles` that are roles of the registry (others are ignored by authorization)."""
    return frozenset(roles) & frozenset(ROLES)
