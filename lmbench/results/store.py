"""The results store: one JSON Lines file per run directory, one self-describing record per line.

Format (documented in ARCHITECTURE.md): `RUN_DIR/results.jsonl`; every line is a JSON object whose "lmbench"
field is the schema tag "lmbench.result/1" (see results/record.py for the fields).

The file is append-only: each record is one write of one line, fsynced, under an exclusive lock, so storing
costs the size of the record, not of the run. A write that fails (disk full, or Ctrl-C before the whole line
is written) is cut back to where it began, leaving every earlier record intact; a whole line is a kept record. A line torn by a kill in mid-write (the file does not end in a
newline) is moved aside to `results.jsonl.torn-<time>` with a one-line warning the next time the store is read
or written, so `report` and `--resume` go on.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from lmbench.errors import LmbenchError, os_problem
from lmbench.results.record import SCHEMA, Record, read_record

if TYPE_CHECKING:  # pandas loads with the two loaders below, not with the store (children and locks start fast)
    import pandas as pd

RESULTS_FILE = "results.jsonl"
RUN_LOCK = ".lmbench.lock"  # held by the one process that measures into a run directory
HELD_ENV = "LMBENCH_RUN_DIRS_HELD"  # run directories this process (or its parent lmbench) holds; children inherit it
SAMPLE_AXES = ("size", "batch", "ctx", "mode", "precision", "tf32", "attention")  # load_samples' columns


class ResultsStore:
    # What a store holds: the file in the run directory, the schema tag of its lines and the class that reads one.
    # A store of another kind of record (results/collectives.py) overrides the three.
    file = RESULTS_FILE
    schema = SCHEMA
    wrap: Callable[[dict[str, Any]], Any] = staticmethod(read_record)  # raises ValueError naming a damaged field

    def __init__(self, run_dir: str | os.PathLike) -> None:
        path = Path(run_dir)
        self.path = path if path.suffix == ".jsonl" else path / self.file
        self.run_dir = self.path.parent

    def append(self, record: Record) -> None:
        if record.data.get("lmbench") != self.schema:
            raise ValueError("not an lmbench record")
        line = (json.dumps(record.data, allow_nan=True) + "\n").encode()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with self._lock():
                self._set_aside_torn_line()
                with open(self.path, "ab", buffering=0) as f:
                    start, written = f.tell(), 0
                    try:
                        while written < len(line):  # an unbuffered write may take part of the line
                            written += f.write(line[written:])
                        os.fsync(f.fileno())
                    except OSError:
                        f.truncate(start)  # disk full: no partial line, the records before this one as they were
                        raise
                    except BaseException:
                        if written < len(line):  # Ctrl-C mid-line: cut it back; a whole line is a kept record
                            f.truncate(start)
                        raise
        except OSError as e:
            raise LmbenchError(f"cannot store a record in {self.path}: {os_problem(e)}; the records before it are intact "
                               f"(continue with --resume --run-dir {self.run_dir})") from None

    @contextmanager
    def claim(self) -> Iterator[None]:
        """Hold the run directory for one measuring process: create it, prove it writable and lock it before
        anything is measured; a second process gets one line naming the PID that holds it. Children of the
        holder (--repeats, the warm-up study, nsys) inherit HELD_ENV and write into it without a lock of their
        own."""
        held = [p for p in os.environ.get(HELD_ENV, "").split(os.pathsep) if p]
        where = str(self.run_dir.resolve())
        if where in held:
            yield
            return
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and not self.path.is_file():
                raise LmbenchError(f"{self.path} is not a file: cannot store results there")
            lock = open(self.run_dir / RUN_LOCK, "a+")
        except OSError as e:
            raise LmbenchError(f"cannot use run directory {self.run_dir}: {os_problem(e)}") from None
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "unknown"
                raise LmbenchError(f"run directory {self.run_dir} in use by PID {holder}") from None
            lock.truncate(0)
            lock.write(str(os.getpid()))
            lock.flush()
            os.environ[HELD_ENV] = os.pathsep.join([*held, where])
            try:
                yield
            finally:
                os.environ[HELD_ENV] = os.pathsep.join(held)

    def latest(self) -> list[Record]:
        """The latest record of each configuration (latest_per_key); none when nothing is stored here yet."""
        return latest_per_key(self.records()) if self.path.exists() else []

    def records(self) -> list[Record]:
        """All records, oldest first; anything that is not an lmbench results file is refused."""
        if not self.path.exists():
            where = self.run_dir if self.path.name == self.file else self.path
            raise LmbenchError(f"no lmbench results found at {where} (expected {self.path})")
        if self._ends_torn() and os.access(self.run_dir, os.W_OK):
            with self._lock():
                self._set_aside_torn_line()
        records = []
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise LmbenchError(f"{self.path} is not an lmbench results file (line {number} is not JSON)") from None
                tag = record.get("lmbench") if isinstance(record, dict) else None
                if tag != self.schema:
                    what = f"schema {tag!r} is not {self.schema!r}" if isinstance(tag, str) else "no lmbench schema tag"
                    raise LmbenchError(f"{self.path} is not an lmbench results file (line {number}: {what})")
                try:
                    records.append(self.wrap(record))
                except ValueError as e:
                    raise LmbenchError(f"{self.path} line {number}: damaged record ({e})") from None
        if not records:
            raise LmbenchError(f"{self.path} holds no lmbench records")
        return records

    def done_keys(self) -> set[str]:
        return {r.key for r in self.records()} if self.path.exists() else set()

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.run_dir / ".results.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _ends_torn(self) -> bool:
        """Whether the file's last line lacks its newline: a write killed midway."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return False
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"

    def _set_aside_torn_line(self) -> None:
        """Move a torn last line to results.jsonl.torn-<time> (under the lock), and remove the temporary files that
        whole-file rewrites of earlier lmbench versions could leave behind."""
        for stale in self.run_dir.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        if not self._ends_torn():
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            keep = data.rfind(b"\n") + 1
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
            aside.write_bytes(data[keep:])
            f.truncate(keep)
            os.fsync(f.fileno())
        print(f"lmbench: warning: {self.path} ended in a torn line (a write cut short); moved {len(data) - keep} "
              f"bytes to {aside}", file=sys.stderr)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one, never a torn one. A failure
    is an OSError that names `path` (a write that fills the disk names no file of its own)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from other users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def latest_per_key(records: list[Record]) -> list[Record]:
    """One record per configuration: a configuration measured twice keeps its latest record."""
    latest: dict[str, Record] = {}
    for record in records:
        latest.pop(record.key, None)
        latest[record.key] = record
    return list(latest.values())


def load_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per record with nested fields flattened to dotted columns (samples, and a data-parallel job's ranks'
    samples, left out)."""
    import pandas as pd

    records = ResultsStore(run_dir).records()
    return pd.json_normalize([{k: v for k, v in r.data.items() if k not in ("samples", "rank_samples")}
                              for r in records], sep=".")


def load_samples(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Every raw step sample, long format: one row per (record, step), warm-up steps included and labelled."""
    import pandas as pd

    rows = [
        {"key": r.key, "label": r.label, **{k: r.config_value(k) for k in SAMPLE_AXES}, **sample}
        for r in ResultsStore(run_dir).records()
        for sample in r.samples
    ]
    return pd.DataFrame(rows)

