"""A soak run: the real server process under a bounded mixed load, sampled for growth.

`run_soak` starts `python -m service` as a separate OS process (SQLite file, or a PostgreSQL
schema; projections applied in the server's process, its default) and, for
`SoakSettings.seconds`, drives it from several concurrent clients, each on its own channel
and pausing `pace` seconds between calls. The modules:

- `settings`: `SoakSettings` and the load's fixed values;
- `server`: the server process (started with benchmarks/servers.py);
- `sampling`: the sampler thread reading /proc/<pid> (VmRSS, Threads, open fds) and the
  server's sessions in pg_stat_activity;
- `calls`: the tally of calls and acknowledged writes, and the caller that fills it;
- `writers`, `readers`, `streams`: the load (writers, readers, stream churners and
  long-lived streams);
- `checks`: the end-of-run checks of the log against the acknowledged writes;
- `judgement`: whether the samples grew;
- `report`: the run's report and its tables;
- `run`: the orchestration, `run_soak`.

Used by tests/e2e/test_soak.py (about a minute per store) and by `benchmarks/soak.py` (the
long soak, minutes to hours).
"""

from tests.support.soak.judgement import Limits, Sample, Verdict, judge
from tests.support.soak.report import SAMPLE_HEADER, SoakReport, sample_row, sample_table
from tests.support.soak.run import run_soak
from tests.support.soak.settings import SoakSettings

__all__ = [
    "SAMPLE_HEADER",
    "Limits",
    "Sample",
    "SoakReport",
    "SoakSettings",
    "Verdict",
    "judge",
    "run_soak",
    "sample_row",
    "sample_table",
]
