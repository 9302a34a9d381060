"""The library's own application-recorder contract, run unmodified against our SQLite recorder.

`ApplicationRecorderTestCase` is the suite the library runs against each of its application
recorders; `optional_test_insert_subscribe` is the part its PostgreSQL recorder opts into and
its SQLite recorder does not (it cannot subscribe). Ours must pass all of it.

`AggregateRecorderTestCase` is deliberately not run: it is the contract of a recorder that
returns no notification ids (it asserts `insert_events(...) is None`), which an application
recorder by definition does not honour; the library itself runs it only against its aggregate
recorders.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from service.store.sqlite import RegistrySQLiteDatastore, RegistrySQLiteRecorder


class TestRegistrySQLiteRecorderContract(ApplicationRecorderTestCase[RegistrySQLiteRecorder]):
    """Each test gets recorders on fresh files in its own temporary directory."""

    def setUp(self) -> None:
        super().setUp()
        self._tmpdir = Path(tempfile.mkdtemp(prefix="sqlite-recorder-contract-"))
        self._datastores: list[RegistrySQLiteDatastore] = []
        self._threads_before = set(threading.enumerate())

    def tearDown(self) -> None:
        # test_concurrent_no_conflicts stops its reader threads without joining them; closing
        # a connection that one of them is still using crashes the interpreter, so join first.
        for thread in threading.enumerate():
            if thread not in self._threads_before:
                thread.join(timeout=10)
        for datastore in self._datastores:
            datastore.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        super().tearDown()

    def create_recorder(self) -> RegistrySQLiteRecorder:
        path = self._tmpdir / f"events-{len(self._datastores)}.sqlite"
        datastore = RegistrySQLiteDatastore(str(path))
        self._datastores.append(datastore)
        recorder = RegistrySQLiteRecorder(datastore)
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()
