"""The registry: the application services wired to one event store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from eventsourcing.persistence import Cipher

from service.app.asset_cases import AssetCases
from service.app.base import Clock, ServiceDeps
from service.app.event_log import EventLog, FollowSettings
from service.app.exporting import LogExport
from service.app.gangs import Gangs
from service.app.head_watcher import HeadWatcher
from service.app.importing import EventImport
from service.app.incidents import Incidents
from service.app.loading import AggregateLoader
from service.app.personal_data import PersonalData
from service.app.police_commands import PoliceCommands
from service.app.shooting_batches import ShootingBatches
from service.app.waves import Waves
from service.app.writer import GroupCommitWriter
from service.areas import AreaCatalog
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from service.store.cipher import EncryptionKeyError
from service.store.transcoding import RegistryMapper, registry_mapper


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(tz=UTC)


def _check_head(backend: EventStoreBackend, mapper: RegistryMapper) -> None:
    """Refuse a log whose last event this registry's keys cannot decrypt (one cheap read)."""
    head = backend.last_notification()
    if head is None:
        return
    try:
        mapper.check_readable(head)
    except EncryptionKeyError as err:
        msg = f"refusing to start: the last event of the log, {err}"
        raise EncryptionKeyError(msg, key_id=err.key_id, subject=err.subject) from None


class Registry:
    """Owns the writer thread, the read pool and the backend; exposes the services.

    With a `cipher` (service.store.cipher.KeyringCipher) event states are encrypted at rest
    and decrypted by every reader of the log. On construction the event at the head of the
    log is checked: if it is encrypted with a key that is not configured (or no key is),
    EncryptionKeyError is raised and the registry does not start.
    """

    def __init__(
        self,
        backend: EventStoreBackend,
        catalog: AreaCatalog,
        *,
        clock: Clock = utc_now,
        max_batch: int = 256,
        read_threads: int = 8,
        poll_interval: float = 0.1,
        follow: FollowSettings | None = None,
        wave_rule: WaveRule | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        mapper = registry_mapper(cipher)
        try:
            _check_head(backend, mapper)
        except BaseException:
            backend.close()
            raise
        self.mapper = mapper
        self.backend = backend
        self.catalog = catalog
        self.writer = GroupCommitWriter(backend, mapper, max_batch=max_batch)
        self.loader = AggregateLoader(backend, mapper)
        self._reads = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="reads")
        self.personal_data = PersonalData(backend, cipher)
        deps = ServiceDeps(
            writer=self.writer,
            loader=self.loader,
            catalog=catalog,
            clock=clock,
            reads=self._reads,
            backend=backend,
            personal_data=self.personal_data,
        )
        self.incidents = Incidents(deps)
        self.shooting_batches = ShootingBatches(deps, self.incidents)
        self.gangs = Gangs(deps)
        self.police_commands = PoliceCommands(deps)
        self.asset_cases = AssetCases(deps)
        self.waves = Waves(deps, wave_rule)
        self.watcher = HeadWatcher(backend, self._reads, poll_interval=poll_interval)
        self.event_log = EventLog(
            backend,
            mapper,
            catalog,
            self._reads,
            self.watcher,
            settings=follow,
            personal_data=self.personal_data,
        )
        self.exports = LogExport(backend, mapper, self._reads)
        self.imports = EventImport(backend, mapper, catalog, self._reads)
        self.writer.start()

    def close(self) -> None:
        """Commit what is queued, stop the threads and close the store."""
        self.writer.stop()
        self.imports.close()
        self.watcher.close()
        self._reads.shutdown(wait=True)
        self.backend.close()
