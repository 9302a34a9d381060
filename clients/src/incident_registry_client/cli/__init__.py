"""The operator command `incidents`: ad-hoc writes, tables, the log, projections, a demo.

It needs the client's `cli` extra (typer and rich): `pip install "incident-registry-client[cli]"`.
The client library itself stays on grpcio and protobuf alone.
"""

from __future__ import annotations

try:
    import rich  # noqa: F401 - only checked for here
    import typer  # noqa: F401
except ImportError as err:  # the extra is not installed: say how to get it, not a traceback
    missing = err.name or "typer/rich"
    msg = (
        f"incidents: the operator CLI needs the client's 'cli' extra ({missing} is missing).\n"
        '  pip install "incident-registry-client[cli]"   (from a checkout: pip install -e '
        '"./clients[cli]")'
    )
    raise SystemExit(msg) from None
