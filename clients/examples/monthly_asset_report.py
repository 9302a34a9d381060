"""Print a monthly asset-recovery report: values seized, confiscated, reinvested, released.

    python clients/examples/monthly_asset_report.py --target localhost:50051 --year 2024

Amounts come from the registry in minor units (cents) of the catalog's currency.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from incident_registry_client import AssetRecoveryGrouping, PeriodKind, RegistryClient

COLUMNS = ("month", "seized", "confiscated", "reinvested", "released")


def money(cents: int) -> str:
    """An amount in cents as units with two decimals and thousands separators."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units:,}.{rest:02d}"


def main(argv: list[str] | None = None) -> None:
    """Print one row per month with movements, then the year's totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051", help="registry host:port")
    parser.add_argument("--year", type=int, default=datetime.now(UTC).year)
    parser.add_argument("--municipality", action="append", default=[], help="area code")
    args = parser.parse_args(argv)

    with RegistryClient(args.target) as registry:
        report = registry.get_asset_recovery_statistics(
            group_by=AssetRecoveryGrouping.PERIOD,
            period_kind=PeriodKind.MONTH,
            from_period=f"{args.year}-01",
            to_period=f"{args.year}-12",
            municipality_codes=args.municipality,
        )
    print(f"Asset recovery {args.year} ({report.currency}), as of log position {report.position}")
    print(f"{COLUMNS[0]:<8}" + "".join(f"{name:>16}" for name in COLUMNS[1:]))
    for row in report.rows:
        amounts = (
            row.seized_value_cents,
            row.confiscated_value_cents,
            row.reinvested_value_cents,
            row.released_value_cents,
        )
        print(f"{row.period:<8}" + "".join(f"{money(a):>16}" for a in amounts))
    totals = report.totals
    amounts = (
        totals.seized_value_cents,
        totals.confiscated_value_cents,
        totals.reinvested_value_cents,
        totals.released_value_cents,
    )
    print(f"{'total':<8}" + "".join(f"{money(a):>16}" for a in amounts))
    print(f"reinvested share of the confiscated value: {totals.reinvested_share:.0%}")


if __name__ == "__main__":
    main()
