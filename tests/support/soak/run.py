"""A soak run: start the server, drive and sample it, check the log, stop it, judge it.

The clients (writers, readers, churners) run in daemon threads for `SoakSettings.seconds`
while the long-lived streams run in threads of their own; the sampler samples the server
throughout. The clients stop first; the long-lived streams stay open until the log has been
read and the subscribers have caught up with its head, then they are cancelled. The run
then checks that every call was answered OK (or with the code its deliberate error
expects), that the server still answers and exits cleanly, and judges the samples.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator

from tests.support.soak.calls import Shared, Tally
from tests.support.soak.checks import check_log, final_head
from tests.support.soak.judgement import Sample, judge
from tests.support.soak.readers import Reader
from tests.support.soak.report import SoakReport
from tests.support.soak.sampling import PgSessions, Sampler
from tests.support.soak.server import (
    LOG_TAIL_LINES,
    ServerProcess,
    start_server,
    stop_server,
    wait_serving,
)
from tests.support.soak.settings import SoakSettings
from tests.support.soak.streams import Churner, LongStream
from tests.support.soak.writers import Writer

Target = tuple[str, Callable[[], None]]


@contextlib.contextmanager
def running_threads(targets: list[Target]) -> Iterator[list[threading.Thread]]:
    """Start a daemon thread per target; join them on exit."""
    threads = [threading.Thread(target=fn, name=name, daemon=True) for name, fn in targets]
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        for thread in threads:
            thread.join(timeout=60)


def client_targets(
    settings: SoakSettings, target: str, shared: Shared
) -> tuple[list[Target], list[LongStream]]:
    """The clients' thread functions, and the long-lived streams (run in their own threads)."""
    rng = random.Random(settings.seed)
    targets: list[Target] = []
    for i in range(settings.writers):
        writer = Writer(i, target, shared, random.Random(rng.random()))
        targets.append((f"writer-{i}", writer.run))
    for i in range(settings.readers):
        targets.append((f"reader-{i}", Reader(target, shared, random.Random(rng.random())).run))
    for i in range(settings.churners):
        targets.append((f"churner-{i}", Churner(target, shared, random.Random(rng.random())).run))
    streams = [
        LongStream(f"subscriber-{i}", target, shared, subscribe=True)
        for i in range(settings.long_subscribers)
    ]
    streams.append(LongStream("watcher", target, shared, subscribe=False))
    return targets, streams


def drive(
    settings: SoakSettings, server: ServerProcess, sampler: Sampler, tally: Tally
) -> list[str]:
    """Run the load for `settings.seconds` while sampling; then the end-of-run checks.

    The clients stop first; the long-lived streams stay open until the log has been read and
    the subscribers have caught up with its head, then they are cancelled.
    """
    shared = Shared(threading.Event(), tally, settings.call_timeout, settings.pace)
    targets, streams = client_targets(settings, server.target, shared)
    long_targets = [(s.name, s.run) for s in streams]
    started = time.monotonic()
    sampler.start(started)
    problems: list[str] = []
    with running_threads(long_targets) as long_threads:
        try:
            with running_threads(targets) as threads:
                try:
                    while (
                        time.monotonic() - started < settings.seconds
                        and server.process.poll() is None
                    ):
                        time.sleep(0.2)
                finally:
                    shared.stop.set()  # before the threads are joined, even when interrupted
            sampler.stop()
            problems += [f"client thread {t.name} did not stop" for t in threads if t.is_alive()]
            problems += check_log(server.target, settings.call_timeout, tally, streams)
        finally:
            shared.stop.set()
            sampler.stop()
            for stream in streams:
                stream.close()
    problems += [f"stream thread {t.name} did not stop" for t in long_threads if t.is_alive()]
    return problems


def run_soak(
    settings: SoakSettings, on_sample: Callable[[Sample], None] | None = None
) -> SoakReport:
    """Start the server, drive and sample it for `settings.seconds`, stop it, judge the run."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    server = start_server(settings)
    sessions: PgSessions | None = None
    sampler = Sampler(server.pid, settings.sample_interval, None, on_sample)
    tally = Tally()
    problems: list[str] = []
    head = 0
    try:
        wait_serving(server)
        if settings.store == "postgres" and settings.postgres is not None:
            sessions = sampler.sessions = PgSessions(settings.postgres)
        problems += drive(settings, server, sampler, tally)
        problems += sampler.errors
        head = final_head(server.target, settings.call_timeout, problems)
    finally:
        sampler.stop()
        tail = server.log_tail(LOG_TAIL_LINES)
        status = stop_server(server)
        if sessions is not None:
            sessions.close()
    problems += [f"{n} calls {m}: {c}" for (m, c), n in tally.unexpected().items()]
    problems += tally.problems
    if status != 0:
        problems.append(f"the server exited with status {status}")
    return SoakReport(
        store=settings.store,
        seconds=settings.seconds,
        samples=sampler.samples,
        verdict=judge(sampler.samples, settings.limits),
        calls=tally.calls,
        acknowledged=len(tally.acks),
        head=head,
        problems=problems,
        exit_status=status,
        server_log_tail=tail,
    )
