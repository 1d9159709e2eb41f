"""The results store: atomic appends, round trips, DataFrames, and refusing files that are not lmbench's."""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
from pathlib import Path

import pytest

import lmbench.results.store as results
from helpers import read_lines
from lmbench.errors import LmbenchError
from lmbench.results.record import SCHEMA, Record
from lmbench.results.store import RESULTS_FILE, ResultsStore, latest_per_key, load_results, load_samples


def leftovers(run_dir: Path) -> list[str]:
    return [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def stored(api_run_dir: Path) -> list[Record]:
    return ResultsStore(api_run_dir).records()


def test_append_writes_one_json_line_per_record(tmp_path, stored):
    store = ResultsStore(tmp_path / "run")
    for n, record in enumerate(stored, start=1):
        store.append(record)
        lines = (tmp_path / "run" / RESULTS_FILE).read_text().splitlines()
        assert len(lines) == n
        assert json.loads(lines[-1]) == record.data
        assert leftovers(tmp_path / "run") == []
    assert (tmp_path / "run" / RESULTS_FILE).read_text().endswith("\n")


def test_records_round_trip(tmp_path, stored):
    store = ResultsStore(tmp_path)
    for record in stored:
        store.append(record)
    assert store.records() == stored
    assert ResultsStore(tmp_path / RESULTS_FILE).records() == stored  # the file path works too
    assert store.done_keys() == {r.key for r in stored}


def test_nan_statistics_round_trip(tmp_path, stored):
    record = Record(copy.deepcopy(stored[0].data))
    record.data["stats"]["forward"]["ci_low"] = float("nan")
    store = ResultsStore(tmp_path)
    store.append(record)
    back = store.records()[0].stats["forward"]["ci_low"]
    assert back != back  # NaN survives


def test_a_failed_append_leaves_the_earlier_records_and_no_partial_line(tmp_path, stored, monkeypatch):
    store = ResultsStore(tmp_path)
    store.append(stored[0])
    before = (tmp_path / RESULTS_FILE).read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)  # the line is written, then the disk turns out full
    with pytest.raises(LmbenchError) as info:
        store.append(stored[1])
    assert (tmp_path / RESULTS_FILE).read_bytes() == before
    assert leftovers(tmp_path) == []
    message = str(info.value)  # one line naming the file, the cause and how to go on
    assert str(tmp_path / RESULTS_FILE) in message and "disk full" in message
    assert f"--resume --run-dir {tmp_path}" in message and "\n" not in message


def test_ctrl_c_keeps_a_whole_line_and_cuts_a_partial_one(tmp_path, stored, monkeypatch):
    store = ResultsStore(tmp_path)
    store.append(stored[0])

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # Ctrl-C after the whole line was written: the record is kept
        patch.setattr(results.os, "fsync", interrupt)
        with pytest.raises(KeyboardInterrupt):
            store.append(stored[1])
    assert store.records() == stored[:2]
    real_open = open

    class HalfWriter:  # Ctrl-C after half the line: cut back to the records before it
        def __init__(self, path, mode="r", **kwargs):
            self.file = real_open(path, mode, **kwargs)

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    kept = (tmp_path / RESULTS_FILE).read_bytes()
    monkeypatch.setattr(results, "open", HalfWriter, raising=False)
    with pytest.raises(KeyboardInterrupt):
        store.append(stored[1])
    monkeypatch.undo()
    assert (tmp_path / RESULTS_FILE).read_bytes() == kept  # the half line is gone, not left torn


def test_appending_writes_only_the_new_line(tmp_path, stored, monkeypatch):
    store = ResultsStore(tmp_path)
    store.append(stored[0])
    written = []
    real_open = open

    def spy(path, mode="r", *args, **kwargs):
        written.append((Path(path).name, mode))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    store.append(stored[1])
    assert (RESULTS_FILE, "ab") in written and not [w for w in written if w[0] == RESULTS_FILE and "w" in w[1]]


def test_a_torn_last_line_is_set_aside_and_the_store_goes_on(tmp_path, stored, capsys):
    store = ResultsStore(tmp_path)
    store.append(stored[0])
    line = json.dumps(stored[1].data).encode()
    with (tmp_path / RESULTS_FILE).open("ab") as f:
        f.write(line[: len(line) // 2])  # a write killed midway
    (tmp_path / f".{RESULTS_FILE}.abc.tmp").write_bytes(b"left by an older lmbench")
    assert store.records() == [stored[0]]  # read: the torn line moved aside, with one warning line
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("lmbench: warning:") and "torn line" in warning and warning.count("\n") == 0
    aside = list(tmp_path.glob(f"{RESULTS_FILE}.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == line[: len(line) // 2]
    store.append(stored[1])  # --resume goes on: the next record lands on a line of its own
    assert store.records() == stored[:2]
    assert not list(tmp_path.glob(f".{RESULTS_FILE}.*.tmp"))


def test_append_refuses_a_foreign_record(tmp_path):
    with pytest.raises(ValueError):
        ResultsStore(tmp_path).append(Record({"key": "x"}))
    assert not (tmp_path / RESULTS_FILE).exists()


def test_done_keys_of_an_empty_directory(tmp_path):
    assert ResultsStore(tmp_path).done_keys() == set()


def test_load_results_flattens_one_row_per_record(api_run_dir, stored):
    df = load_results(api_run_dir)
    assert len(df) == len(stored) == 2
    for column in ("key", "status", "config.mode", "config.ctx", "model.label", "stats.forward.mean",
                   "stats.forward.std", "stats.total.cv_pct", "throughput.tokens_per_s", "environment.device_name"):
        assert column in df.columns, column
    assert "stats.backward.mean" in df.columns
    assert not any(c == "samples" or c.startswith("samples.") for c in df.columns)
    for (_, row), record in zip(df.iterrows(), stored):
        assert row["key"] == record.data["key"]
        assert row["stats.forward.mean"] == record.data["stats"]["forward"]["mean"]
        assert row["config.mode"] == record.data["config"]["mode"]


def test_load_samples_has_every_step_with_warmup_labelled(api_run_dir, stored):
    df = load_samples(api_run_dir)
    assert len(df) == sum(len(r.samples) for r in stored)
    assert {"key", "label", "size", "batch", "ctx", "mode", "precision", "tf32", "attention", "step",
            "warmup", "forward_ms", "step_ms"} <= set(df.columns)
    for record in stored:
        rows = df[df["key"] == record.data["key"]]
        warm = rows[rows["warmup"].astype(bool)]
        assert len(warm) == record.data["config"]["warmup"]
        assert len(rows) - len(warm) == record.data["config"]["steps"]
        assert list(rows["forward_ms"]) == [s["forward_ms"] for s in record.data["samples"]]
        assert set(rows["mode"]) == {record.data["config"]["mode"]}


def test_latest_per_key_keeps_the_latest_record():
    a1, b, a2 = (Record({"key": "a", "n": 1}), Record({"key": "b", "n": 2}), Record({"key": "a", "n": 3}))
    assert latest_per_key([a1, b, a2]) == [b, a2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, this is not json\n", "line 1 is not JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary garbage", "not JSON"),
        (b'{"a": 1}\n', "no lmbench schema tag"),
        (b'[1, 2, 3]\n', "no lmbench schema tag"),
        (b'{"lmbench": "other.result/9", "key": "k"}\n', "'other.result/9' is not"),
        (b"size,batch,ctx\ntiny,4,128\n", "line 1 is not JSON"),
        (b"42\n", "no lmbench schema tag"),
    ],
)
def test_a_file_that_is_not_lmbench_is_refused_by_name(tmp_path, content, message):
    (tmp_path / RESULTS_FILE).write_bytes(content)
    for reader in (lambda: ResultsStore(tmp_path).records(), lambda: load_results(tmp_path),
                   lambda: load_samples(tmp_path)):
        with pytest.raises(LmbenchError) as info:
            reader()
        assert str(tmp_path / RESULTS_FILE) in str(info.value)
        assert "not an lmbench results file" in str(info.value)
        assert message in str(info.value)


def test_a_later_bad_line_is_refused_with_its_number(tmp_path, stored):
    ResultsStore(tmp_path).append(stored[0])
    with (tmp_path / RESULTS_FILE).open("a") as f:
        f.write('{"not": "ours"}\n')
    with pytest.raises(LmbenchError, match="line 2"):
        ResultsStore(tmp_path).records()


def test_a_csv_path_is_refused_by_name(tmp_path):
    csv = tmp_path / "results.csv"
    csv.write_text("Model Size,Forward (ms)\ntiny,1.00 ± 0.10\n")
    with pytest.raises(LmbenchError) as info:
        ResultsStore(csv).records()
    assert str(csv) in str(info.value)


def test_a_missing_directory_is_refused_by_name(tmp_path):
    with pytest.raises(LmbenchError) as info:
        ResultsStore(tmp_path / "nowhere").records()
    assert "no lmbench results" in str(info.value) and str(tmp_path / "nowhere") in str(info.value)


def test_blank_lines_are_skipped(tmp_path, stored):
    ResultsStore(tmp_path).append(stored[0])
    with (tmp_path / RESULTS_FILE).open("a") as f:
        f.write("\n   \n")
    ResultsStore(tmp_path).append(stored[1])
    assert ResultsStore(tmp_path).records() == stored


def test_a_jsonl_path_names_its_own_directory(tmp_path, api_run_dir):
    shutil.copy(api_run_dir / RESULTS_FILE, tmp_path / "elsewhere.jsonl")
    store = ResultsStore(tmp_path / "elsewhere.jsonl")
    assert store.path == tmp_path / "elsewhere.jsonl" and store.run_dir == tmp_path
    assert [r.key for r in store.records()] == [r["key"] for r in read_lines(api_run_dir / RESULTS_FILE)]
    assert os.path.getsize(tmp_path / "elsewhere.jsonl") > 0
    assert all(r.data["lmbench"] == SCHEMA for r in store.records())
