"""Report a shooting, then read the month's statistics once they include it.

    python clients/examples/report_and_wait.py --target localhost:50051 --municipality 21001

The write returns the log position it was recorded at; passing it as `min_position` makes
the read wait (within its deadline) until the statistics projection has applied it.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from incident_registry_client import (
    AreaKind,
    PeriodKind,
    RegistryClient,
    TimePrecision,
    Weapon,
    WeaponKind,
)


def main(argv: list[str] | None = None) -> None:
    """Report one shooting and print the statistics row that counts it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051", help="registry host:port")
    parser.add_argument("--municipality", default="21001", help="area catalog code")
    parser.add_argument("--actor", default="example-reporter", help="recorded as the actor")
    args = parser.parse_args(argv)

    occurred_at = datetime.now(UTC) - timedelta(minutes=30)
    with RegistryClient(args.target, actor=args.actor) as registry:
        written = registry.report_shooting(
            occurred_at=occurred_at,
            occurred_at_precision=TimePrecision.MINUTE,
            municipality_code=args.municipality,
            weapons=[Weapon(WeaponKind.HANDGUN)],
            injured=1,
            description="reported by clients/examples/report_and_wait.py",
        )
        print(f"reported incident {written.aggregate_id} at log position {written.position}")
        statistics = registry.get_area_statistics(
            area_kind=AreaKind.MUNICIPALITY,
            area_codes=[args.municipality],
            period_kind=PeriodKind.MONTH,
            min_position=written.position,
        )
    print(f"statistics as of position {statistics.position}:")
    for row in statistics.rows:
        print(
            f"  {row.area_code} {row.period}: {row.incidents} incidents, "
            f"{row.killed} killed, {row.injured} injured"
        )


if __name__ == "__main__":
    main()
