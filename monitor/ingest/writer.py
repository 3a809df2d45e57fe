"""The database side of an import, in a thread of its own.

Reading and validating a batch (Arrow kernels, hashing) and writing the previous one
(the database driver, and on PostgreSQL the server) mostly run outside the GIL, so a
writer thread fed through a small bounded queue keeps both of the machine's cores
busy while holding at most a few batches in memory.

The thread owns the import's one transaction from start to finish: it commits only
when the importer says so at the end (``finish(commit=True)``), and rolls back
otherwise (``abandon()`` after an interruption or error, or a failure of its own).
No row is visible to anyone before that one commit, so an import killed at any
moment, even by SIGKILL, leaves the database as it was: the server (PostgreSQL)
or the next opener of the file (SQLite's WAL) discards the unfinished transaction.

Imports take a lock first (``store.try_lock_imports``), so two imports at once run
one after the other, the second seeing what the first committed.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine

from monitor import store

_QUEUE_BATCHES = 3
LOCK_WAIT_SECONDS = 3600.0  # how long an import waits for another one to finish
_LOCK_POLL_SECONDS = 0.2


class ImportLockTimeout(RuntimeError):
    """Another import held the database for longer than ``LOCK_WAIT_SECONDS``."""


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class _Finish:
    commit: bool


class _Rollback(Exception):
    """Leaves the transaction without committing."""


class BatchWriter:
    """Upserts validated batches in a background thread inside one transaction."""

    def __init__(self, engine: Engine, source: str, now: dt.datetime, *, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
        self.source = source
        self.now = now
        self.counts = WriteCounts()
        self.error: BaseException | None = None
        self.committed = False
        self._engine = engine
        self._lock_wait = lock_wait
        self._abandoned = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self._mask_cache: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="mspmon-import-writer", daemon=True)
        self._thread.start()

    def put(self, columns: dict[str, list], dimensions: tuple[str, ...]) -> None:
        """Queue a batch; after a failure in the thread, batches are dropped."""
        if self.error is None:
            self._queue.put((columns, dimensions))

    def finish(self, commit: bool) -> bool:
        """Commit (or roll back) and wait; True when the data was committed."""
        self._queue.put(_Finish(commit))
        self._thread.join()
        return self.committed

    def abandon(self) -> None:
        """Roll back whatever was written and wait for the thread; safe to repeat.

        Used when the import stops early (an interruption, a crashed validator, any
        exception in the importing thread). A wait for the import lock stops too.
        """
        self._abandoned.set()
        while self._thread.is_alive():
            try:  # the queue may be full while the thread is gone or busy: never block on it
                self._queue.put(_Finish(False), timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()

    def _run(self) -> None:
        try:
            with self._engine.begin() as connection:
                self.connection = connection
                self._lock(connection)
                self.registry = store.Registry.load(connection)
                # A first load into an empty source cannot meet stored rows (repeats
                # within the import are caught before they get here): skip lookups.
                self._source_is_empty = not store.source_has_responses(connection, self.source)
                while True:
                    item = self._queue.get()
                    if isinstance(item, _Finish):
                        if not item.commit or self.error is not None:
                            raise _Rollback
                        break
                    if self.error is None:
                        self._write(*item)
            self.committed = True  # the block above ended without error: committed
        except _Rollback:
            pass
        except BaseException as exc:  # handed to the importing thread, which reports it
            self.error = exc
            self._drain()

    def _lock(self, connection: Any) -> None:
        """Wait for the import lock, giving up when abandoned or after ``lock_wait``."""
        deadline = time.monotonic() + self._lock_wait
        while not store.try_lock_imports(connection):
            if self._abandoned.is_set():
                raise _Rollback
            if time.monotonic() > deadline:
                raise ImportLockTimeout(
                    f"another import has held the database for over {self._lock_wait:.0f} s; "
                    "nothing was written, try again when it has finished"
                )
            time.sleep(_LOCK_POLL_SECONDS)

    def _drain(self) -> None:
        """Keep taking batches after a failure so the producer never blocks."""
        while not isinstance(self._queue.get(), _Finish):
            pass

    def _write(self, columns: dict[str, list], dimensions: tuple[str, ...]) -> None:
        try:
            self._upsert(columns, dimensions)
        except store.RegistryFull as exc:
            self.error = exc

    def _upsert(self, columns: dict[str, list], dimensions: tuple[str, ...]) -> None:
        ids = columns["response_id"]
        known = {} if self._source_is_empty else store.existing_responses(self.connection, self.source, ids)
        new_positions, changed_positions, keys = [], [], []
        for position, (rid, digest) in enumerate(zip(ids, columns["content_hash"], strict=True)):
            previous = known.get(rid)
            if previous is None:
                new_positions.append(position)
            elif previous[1] != digest:
                changed_positions.append(position)
                keys.append(previous[0])
        self.counts.unchanged += len(ids) - len(new_positions) - len(changed_positions)
        if not new_positions and not changed_positions:
            return
        rows = self._rows(columns, dimensions)
        insert_columns = store.insert_columns(self.registry)
        store.insert_responses(self.connection, insert_columns, [rows[p] for p in new_positions])
        store.update_responses(self.connection, insert_columns, keys, [rows[p] for p in changed_positions])
        self.counts.inserted += len(new_positions)
        self.counts.updated += len(changed_positions)

    def _rows(self, columns: dict[str, list], dimensions: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """Rows as tuples in ``store.insert_columns`` order, values already as stored."""
        size = len(columns["response_id"])
        codes: dict[int, list[int | None]] = {}
        for name in dimensions:
            dim_id, slot = self.registry.dimension(self.connection, name, self.now)
            values = columns[f"dim:{name}"]
            mapping: dict[str, int | None] = {"": None}
            for value in set(values):
                if value not in mapping:
                    mapping[value] = self.registry.value_code(self.connection, dim_id, value, self.now)
            codes[slot] = [mapping[value] for value in values]
        for text, names in zip(columns["factors_json"], columns["factors"], strict=True):
            if text not in self._mask_cache:
                self._mask_cache[text] = self.registry.factor_mask(self.connection, names)
        masks = [self._mask_cache[text] for text in columns["factors_json"]]
        submitted = np.datetime_as_string(np.array(columns["submitted_us"], dtype="datetime64[us]"), unit="us")
        nothing = [None] * size
        slot_values = [codes.get(slot, nothing) for slot in store.used_slots(self.registry)]
        now_text = self.now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return list(
            zip(
                [self.source] * size,
                columns["response_id"],
                np.char.replace(submitted, "T", " ").tolist(),
                columns["local_day"],
                columns["ticket_id"],
                columns["ticket_type"],
                columns["rating"],
                columns["lost_time_minutes"],
                columns["factors_json"],
                masks,
                columns["comment"],
                *slot_values,
                columns["content_hash"],
                [now_text] * size,
                strict=True,
            )
        )
