"""Follow the registry's event log and print each event, from the start or after a position.

    python clients/examples/follow_log.py --target localhost:50051 --limit 10
    python clients/examples/follow_log.py --after 1200 --stream-type incident --tag police_zone:5341

The subscription reconnects by itself after the last position received when the connection
drops (a server restart, say), so no event is printed twice or skipped.
"""

from __future__ import annotations

import argparse

from incident_registry_client import (
    CaughtUp,
    EventFilter,
    FellBehind,
    PayloadFormat,
    RecordedEvent,
    RegistryClient,
)


def main(argv: list[str] | None = None) -> None:
    """Print events as they come; stop after --limit events (0: follow until interrupted)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051", help="registry host:port")
    parser.add_argument("--after", type=int, default=0, help="start after this log position")
    parser.add_argument("--limit", type=int, default=0, help="stop after this many events")
    parser.add_argument("--stream-type", action="append", default=[], help="e.g. incident")
    parser.add_argument("--tag", action="append", default=[], help="e.g. municipality:21001")
    parser.add_argument("--until-caught-up", action="store_true", help="stop at the head")
    args = parser.parse_args(argv)

    selection = EventFilter(stream_types=args.stream_type, tags=args.tag)
    printed = 0
    with (
        RegistryClient(args.target) as registry,
        registry.subscribe(
            after_position=args.after, filter=selection, payload_format=PayloadFormat.TYPED
        ) as subscription,
    ):
        try:
            for item in subscription:
                if isinstance(item, RecordedEvent):
                    occurred = item.occurred_at.isoformat() if item.occurred_at else "-"
                    print(
                        f"{item.position:>8} {occurred} {item.stream_type:<16} "
                        f"{item.event_type:<28} {item.stream_id}"
                    )
                    printed += 1
                    if printed == args.limit:
                        break
                elif isinstance(item, CaughtUp):
                    print(f"-- caught up at position {item.position}")
                    if args.until_caught_up:
                        break
                elif isinstance(item, FellBehind):
                    print(f"-- fell behind at {item.position}, head {item.head_position}")
        except KeyboardInterrupt:
            pass
    print(f"-- {printed} events, resume with --after {subscription.position or args.after}")


if __name__ == "__main__":
    main()
