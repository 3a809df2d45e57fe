"""Fault injection: an import stopped at any point leaves the store as it was and records the attempt.

Each fault is injected on SQLite and PostgreSQL: an exception from the importing side
after k batches, a failure inside the writer thread after k batches, SIGINT / SIGTERM
to a real ``mspmon ingest`` process at a random moment while it writes, and SIGKILL
of the validating child process. After each: the same rows, dimensions, values and
factors as before, and an import-run row saying ``interrupted`` or ``failed`` and why.

The moments are random (seeded from ``MSPMON_FAULT_SEED`` or the clock, and printed,
so a failure can be replayed).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from config import Settings, load_settings
from monitor import store
from monitor.dev.synthetic import write_csv
from monitor.ingest import importer as ingest_module
from monitor.ingest.importer import ImportInterrupted, ingest_files
from monitor.ingest.readers import CANONICAL_COLUMNS
from monitor.ingest.worker import ValidationCrashed
from monitor.ingest.writer import BatchWriter
from monitor.store.models import Dimension, DimensionValue, Factor, ImportRun, responses

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
HEADER = ",".join(CANONICAL_COLUMNS) + ",country,service"
SEED = int(os.environ.get("MSPMON_FAULT_SEED", time.time_ns() % 100_000))
BIG_ROWS = 300_000  # a few seconds of import: room to interrupt it while it writes


@pytest.fixture(scope="module", autouse=True)
def _announce_seed() -> None:
    print(f"fault-injection seed: MSPMON_FAULT_SEED={SEED}")


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("big") / "big.csv", BIG_ROWS, seed=3)


def many_rows(tmp_path: Path, name: str, count: int, *, prefix: str = "R", country: str = "C") -> Path:
    rows = [f"{prefix}{i},2025-03-04T09:00:00Z,I{i},incident,{i % 11},{i % 50},F{i % 4},,{country}{i % 9},S{i % 5}" for i in range(count)]
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def snapshot(engine: Engine) -> tuple:
    """What an import could change: rows (with content), the registry's sizes."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(func.count(), func.coalesce(func.sum(responses.c.content_hash % 1_000_003), 0)).select_from(responses)
        ).one()
        counts = tuple(
            connection.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Dimension, DimensionValue, Factor)
        )
    return tuple(rows), counts


def runs(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(ImportRun.status, ImportRun.message).order_by(ImportRun.id))]


@pytest.fixture
def seeded(engine: Engine, settings: Settings, tmp_path: Path) -> tuple:
    """A store that already holds something, so "as before" is not just "empty"."""
    report = ingest_files(engine, [many_rows(tmp_path, "seed.csv", 50, prefix="S")], settings, now=NOW)
    assert report.committed
    return snapshot(engine)


# --- exceptions inside the process -----------------------------------------------------------


@pytest.mark.parametrize("fault", [RuntimeError("disk on fire"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_an_exception_after_k_batches_rolls_back_and_is_recorded(engine, database_url, tmp_path, seeded, monkeypatch, fault):
    small = load_settings(environ={}, overrides={"database_url": database_url, "ingest_batch_rows": 100})
    k = random.Random(SEED).randint(1, 8)
    real = ingest_module.validate_files

    def failing(paths, settings, now):
        for number, item in enumerate(real(paths, settings, now)):
            if number == k:
                time.sleep(0.2)  # the writer has taken the k batches before
                raise fault
            yield item

    monkeypatch.setattr(ingest_module, "validate_files", failing)
    with pytest.raises(type(fault)):
        ingest_files(engine, [many_rows(tmp_path, "a.csv", 1_000, country="New")], small, now=NOW, parallel=False)
    assert snapshot(engine) == seeded
    status, message = runs(engine)[-1]
    if isinstance(fault, KeyboardInterrupt):
        assert status == "interrupted" and "interrupted" in message
    else:
        assert status == "failed" and "disk on fire" in message


def test_a_failure_inside_the_writer_after_k_batches_rolls_back_and_is_recorded(engine, database_url, tmp_path, seeded, monkeypatch):
    small = load_settings(environ={}, overrides={"database_url": database_url, "ingest_batch_rows": 100})
    k = random.Random(SEED + 1).randint(1, 8)
    calls = {"n": 0}
    real = BatchWriter._upsert

    def upsert(self, columns, dimensions):
        calls["n"] += 1
        if calls["n"] > k:
            raise OSError("connection reset by peer")
        real(self, columns, dimensions)

    monkeypatch.setattr(BatchWriter, "_upsert", upsert)
    with pytest.raises(OSError):
        ingest_files(engine, [many_rows(tmp_path, "a.csv", 1_000, country="New")], small, now=NOW, parallel=False)
    assert snapshot(engine) == seeded
    assert runs(engine)[-1] == ("failed", "OSError: connection reset by peer")


def test_a_signal_handled_in_process_is_an_import_interrupted(engine, database_url, tmp_path, seeded, monkeypatch):
    """SIGTERM would end Python at once; during an import it rolls back and records instead."""
    small = load_settings(environ={}, overrides={"database_url": database_url, "ingest_batch_rows": 100})
    real = ingest_module.validate_files

    def signalling(paths, settings, now):
        for number, item in enumerate(real(paths, settings, now)):
            if number == 3:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler runs in between
            yield item

    monkeypatch.setattr(ingest_module, "validate_files", signalling)
    with pytest.raises(ImportInterrupted):
        ingest_files(engine, [many_rows(tmp_path, "a.csv", 1_000)], small, now=NOW, parallel=False)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored
    assert snapshot(engine) == seeded
    assert runs(engine)[-1] == ("interrupted", "interrupted by SIGTERM")


# --- real processes ----------------------------------------------------------------------------


def wait_until_writing(engine: Engine, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the import holds the import lock (it writes from then on), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"import ended early: {process.communicate()}"
        with engine.connect() as connection:
            free = store.try_lock_imports(connection)
            connection.rollback()
        if not free:
            return
        time.sleep(0.02)
    pytest.fail("the import never started writing")


def mspmon(database_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MSPMON_DATABASE_URL": database_url}
    env.pop("MSPMON_CONFIG", None)
    command = [sys.executable, "-c", "from monitor.cli.commands import main; main()", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_a_real_ingest_at_a_random_moment(engine, database_url, big_csv, seeded, signum):
    delay = random.Random(SEED + signum).uniform(0.0, 0.8)
    process = mspmon(database_url, "ingest", str(big_csv))
    wait_until_writing(engine, process)
    time.sleep(delay)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, f"the import finished before the signal (delay {delay:.2f} s)"
    assert "Aborted!" in stderr and "Traceback" not in stderr
    assert snapshot(engine) == seeded
    assert runs(engine)[-1] == ("interrupted", f"interrupted by {signal.Signals(signum).name}")


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def test_killing_the_validating_child_of_a_real_ingest(tmp_path, big_csv):
    """The CLI validates big SQLite imports in a child process; SIGKILL it mid-import."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    from monitor.store import db

    engine = db.make_engine(url)
    db.upgrade(engine)
    ingest_files(engine, [many_rows(tmp_path, "seed.csv", 50, prefix="S")], load_settings(environ={}, overrides={"database_url": url}), now=NOW)
    before = snapshot(engine)
    process = mspmon(url, "ingest", str(big_csv))
    wait_until_writing(engine, process)
    time.sleep(random.Random(SEED + 2).uniform(0.0, 0.5))
    children = children_of(process.pid)
    assert children, "no validating child process"
    os.kill(children[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "ValidationCrashed" in stderr
    assert snapshot(engine) == before
    status, message = runs(engine)[-1]
    assert status == "failed" and "validating process failed" in message
    engine.dispose()


def test_killing_the_validating_child_in_process(engine, settings, big_csv, seeded):
    """The same on both backends, through the library with a validating child."""
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            children = children_of(os.getpid())
            if children:
                time.sleep(random.Random(SEED + 3).uniform(0.3, 1.0))
                os.kill(children[-1], signal.SIGKILL)
                killed.append(children[-1])
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with pytest.raises(ValidationCrashed):
            ingest_files(engine, [big_csv], settings, parallel=True)
    finally:
        thread.join()
    assert snapshot(engine) == seeded
    assert runs(engine)[-1][0] == "failed"


def test_sigkill_of_the_importer_leaves_the_store_as_it_was(engine, database_url, big_csv, seeded):
    """SIGKILL cannot be handled: the one transaction is what keeps the store intact."""
    process = mspmon(database_url, "ingest", str(big_csv))
    wait_until_writing(engine, process)
    time.sleep(random.Random(SEED + 4).uniform(0.2, 1.0))
    process.kill()
    process.communicate(timeout=60)
    assert snapshot(engine) == seeded  # (no attempt can be recorded: the process is gone)


# --- concurrent imports ------------------------------------------------------------------------


def test_concurrent_imports_adding_the_same_new_values_both_succeed(engine, settings, tmp_path, monkeypatch):
    """Both imports load the registry before either commits: the race that raised IntegrityError."""
    real_load = store.Registry.load.__func__

    def slow_load(cls, connection):
        registry = real_load(cls, connection)
        time.sleep(0.5)  # the other import loads its (same, stale) registry meanwhile
        return registry

    monkeypatch.setattr(store.Registry, "load", classmethod(slow_load))
    paths = [many_rows(tmp_path, f"{name}.csv", 2_000, prefix=name) for name in ("a", "b")]
    results: dict[str, object] = {}

    def run(name: str, path: Path) -> None:
        try:
            results[name] = ingest_files(engine, [path], settings, source=name, now=NOW, parallel=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[name] = exc

    threads = [threading.Thread(target=run, args=(name, path)) for name, path in zip("ab", paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(getattr(results[name], "committed", False) for name in "ab"), results
    assert [results[name].inserted for name in "ab"] == [2_000, 2_000]
    with engine.connect() as connection:
        values = connection.execute(select(DimensionValue.value)).scalars().all()
        dims = connection.execute(select(Dimension.name)).scalars().all()
    assert sorted(dims) == ["country", "service"]
    assert len(values) == len(set(values)) == 9 + 5


def test_a_stale_registry_finds_the_value_another_import_added(engine):
    """Insert-if-absent: a value registered since this registry loaded is reused, not re-inserted."""
    with engine.begin() as connection:
        stale = store.Registry.load(connection)
    with engine.begin() as connection:
        fresh = store.Registry.load(connection)
        dim_id, slot = fresh.dimension(connection, "country", NOW)
        code = fresh.value_code(connection, dim_id, "Finland", NOW)
        fresh.factor_mask(connection, ["Slow"])
    with engine.begin() as connection:
        assert stale.dimension(connection, "country", NOW) == (dim_id, slot)
        assert stale.value_code(connection, dim_id, "Finland", NOW) == code
        assert stale.factor_mask(connection, ["Slow"]) == 1
        # A new dimension whose slot the stale registry thought free takes the next one.
        assert stale.dimension(connection, "service", NOW)[1] != slot
        assert stale.factor_mask(connection, ["Other"]) == 2


def test_a_child_killed_in_the_middle_of_a_message_is_a_crash(monkeypatch, settings, tmp_path):
    """Killed while writing, the validating child leaves half a pickle in the pipe: the
    parent reports the crash (ValidationCrashed), not an unpickling error."""
    from monitor.ingest import worker

    half = "import pickle, sys; d = pickle.dumps(list(range(1000))); sys.stdin.buffer.read(); " \
           "sys.stdout.buffer.write(d[: len(d) // 2]); sys.stdout.flush(); sys.exit(137)"
    real = worker.subprocess.Popen

    def truncating(args, **kwargs):
        return real([sys.executable, "-c", half], **kwargs)

    monkeypatch.setattr(worker.subprocess, "Popen", truncating)
    with pytest.raises(ValidationCrashed, match="code 137"):
        list(worker.validate_files_in_child([tmp_path / "any.csv"], settings, dt.datetime.now(dt.UTC)))
