"""`python -m service` with INCIDENTS_TRACING on: it serves, stamps trace ids, and stops cleanly,
whether its spans are printed or sent to a collector that is not there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from incident_registry_client.proto.incidents.v1 import incident_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import incident_service_pb2_grpc

from tests.e2e.test_server_process import free_port, wait_serving
from tests.support import builders as b

ROOT = Path(__file__).resolve().parents[2]
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def serve_one_write(env: dict[str, str], tmp_path: Path) -> tuple[str, str, str, int]:
    """Start the server with `env`, report a shooting with a traceparent, stop it with SIGTERM.

    Returns the trace id recorded in the event's metadata, standard output, standard error
    and the exit status.
    """
    target = f"127.0.0.1:{free_port()}"
    variables = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INCIDENTS_", "OTEL_"))},
        "INCIDENTS_LISTEN_ADDRESS": target,
        "INCIDENTS_SQLITE_PATH": str(tmp_path / "registry.sqlite"),
        "INCIDENTS_LOG_FORMAT": "json",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_serving(target)
        with grpc.insecure_channel(target) as channel:
            incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
            reply = incidents.ReportShooting(
                b.shooting(), metadata=(("traceparent", TRACEPARENT),), timeout=10
            )
            history = incidents.GetIncident(
                pb.GetIncidentRequest(incident_id=reply.result.aggregate_id), timeout=10
            ).history
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return history[0].metadata.trace_id, out, err, process.returncode


def test_console_tracing_prints_each_span_as_a_json_line_on_stderr(tmp_path: Path) -> None:
    trace_id, out, err, status = serve_one_write({"INCIDENTS_TRACING": "console"}, tmp_path)

    assert status == 0, err
    assert trace_id == CALLER_TRACE
    spans = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    names = {span["name"] for span in spans}
    assert "incidents.v1.IncidentService/ReportShooting" in names
    report = next(s for s in spans if s["name"].endswith("/ReportShooting"))
    assert report["context"]["trace_id"] == f"0x{CALLER_TRACE}"
    assert report["kind"] == "SpanKind.SERVER"
    assert report["resource"]["attributes"]["service.name"] == "incident-registry"
    # Standard output keeps carrying nothing but the JSON log lines.
    logs = [json.loads(line) for line in out.splitlines()]
    started = next(line for line in logs if line["event"] == "server_started")
    assert started["tracing"] == "console"
    completed = [
        line
        for line in logs
        if line["event"] == "rpc_completed" and line["rpc"].endswith("/ReportShooting")
    ]
    assert [line["trace_id"] for line in completed] == [CALLER_TRACE]


def test_otlp_tracing_to_an_unreachable_collector_still_serves(tmp_path: Path) -> None:
    env = {
        "INCIDENTS_TRACING": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
        "OTEL_SERVICE_NAME": "registry-under-test",
    }
    trace_id, out, err, status = serve_one_write(env, tmp_path)

    assert status == 0, err
    assert trace_id == CALLER_TRACE
    logs = [json.loads(line) for line in out.splitlines()]
    assert any(line["event"] == "server_stopped" for line in logs)
