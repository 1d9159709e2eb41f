"""`--json` on bench, sweep, report and compare: stdout is one strict JSON document, numbers as numbers, equal to
the stored records; status lines stay on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import REPO_ROOT, run_main

# One tiny configuration, measured by `bench` and by a one-configuration `sweep`, so the two run directories pair up
# in `compare`.
TINY_ARGS = ["--size", "tiny", "--mode", "forward", "--ctx", "16", "--batch", "2", "--warmup", "0", "--steps", "2",
             "--vocab-size", "64", "--device", "cpu"]


def document(stdout: str) -> dict:
    """stdout parsed as a whole (so nothing but the document is on it), refusing NaN and Infinity."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")
    return json.loads(stdout, parse_constant=refuse)


def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports without drawing their plots (seconds each; tests/test_plots.py checks them): the JSON is the subject."""
    import lmbench.render.timing_report
    monkeypatch.setattr(lmbench.render.timing_report, "figures", lambda records: iter(()))


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """{"bench" | "sweep": (run directory, the finished run)}: each command run once with --json."""
    cwd = tmp_path_factory.mktemp("json")
    with pytest.MonkeyPatch.context() as monkeypatch:
        no_plots(monkeypatch)
        runs = {command: run_main([command, *TINY_ARGS, "--run-dir", command, "--json"], cwd=cwd)
                for command in ("bench", "sweep")}
    for proc in runs.values():
        assert proc.returncode == 0, proc.stderr
    return {command: (cwd / command, proc) for command, proc in runs.items()}


def _check_report(doc: dict, run_dir: Path) -> None:
    """The document agrees with load_results, number for number, and names files that exist."""
    from lmbench import load_results

    stored = load_results(run_dir).set_index("key")
    assert doc["schema"] == "lmbench.report/1"
    assert {c["key"] for c in doc["configurations"]} == set(stored.index)
    for row in doc["tables"]["results"]:
        record = stored.loc[row["key"]]
        for phase in ("forward", "total"):
            assert row[f"{phase}_mean_ms"] == record[f"stats.{phase}.mean"]
            assert row[f"{phase}_std_ms"] == record[f"stats.{phase}.std"]
    for row in doc["tables"]["statistics"]:
        assert isinstance(row["n"], int) and isinstance(row["median_ms"], float)
        assert row["median_ms"] == stored.loc[row["key"], f"stats.{row['phase']}.median"]
    for row in doc["tables"]["throughput"]:
        assert row["tokens_per_s"] == stored.loc[row["key"], "throughput.tokens_per_s"]
        assert row["mfu_pct"] is None  # no datasheet peak for a CPU: null, not NaN
    assert all(isinstance(f["claim"], str) for f in doc["findings"]) and doc["findings"]
    assert Path(doc["files"][0]).name == "report.md"
    assert all(Path(run_dir.parent, f).is_file() for f in doc["files"])  # relative to the command's directory


@pytest.mark.parametrize("command", ["bench", "sweep"])
def test_bench_and_sweep_print_one_json_document(measured, command: str) -> None:
    run_dir, proc = measured[command]
    doc = document(proc.stdout)
    _check_report(doc, run_dir)
    assert len(doc["configurations"]) == 1 and doc["configurations"][0]["config"]["ctx"] == 16
    assert "# Benchmark Results" not in proc.stdout  # the Markdown report is not printed
    assert f"report: {command}/report.md" in proc.stderr  # status lines stay on stderr
    if command == "sweep":  # off a terminal: a plain line per configuration with its steps
        assert "sweep: 1/1 done tiny forward fp32 ctx 16; 2/2 steps (" in proc.stderr


def test_report_json_of_a_sweep_nulls_what_a_mode_lacks(cli_sweep, tmp_path: Path, monkeypatch) -> None:
    no_plots(monkeypatch)
    proc = run_main(["report", str(cli_sweep.run_dir), "--out", str(tmp_path / "out"), "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = document(proc.stdout)
    _check_report(doc, cli_sweep.run_dir)
    forward = [row for row in doc["tables"]["results"] if row["mode"] == "forward"]
    assert len(forward) == 2 and all(row["backward_mean_ms"] is None for row in forward)
    assert {row["mode"] for row in doc["tables"]["ratio"]} == {"forward-backward"}
    assert doc["files"][0] == str(tmp_path / "out" / "report.md")
    assert "report written to" in proc.stderr


def test_the_api_returns_the_same_document(cli_sweep, tmp_path: Path, monkeypatch) -> None:
    import lmbench

    no_plots(monkeypatch)
    doc = lmbench.report_json(cli_sweep.run_dir, tmp_path)
    json.dumps(doc, allow_nan=False)  # JSON types only
    _check_report(doc, cli_sweep.run_dir)


def test_compare_json_holds_the_rows_and_the_gate(measured, tmp_path: Path) -> None:
    import lmbench

    bench_dir, sweep_dir = measured["bench"][0], measured["sweep"][0]
    out = tmp_path / "new" / "cmp.md"
    proc = run_main(["compare", str(bench_dir), str(sweep_dir), "--json", "--fail-on-regression", "5%",
                     "--out", str(out)], cwd=tmp_path)
    doc = document(proc.stdout)
    assert doc["schema"] == "lmbench.comparison/1" and doc["files"] == [str(out), str(out.with_suffix(".csv"))]
    assert out.is_file() and out.with_suffix(".csv").is_file()
    (row,) = doc["rows"]
    expected = lmbench.compare(str(bench_dir), str(sweep_dir)).iloc[0]
    for column in ("a_mean_ms", "b_mean_ms", "delta_pct", "ci_low_pct", "ci_high_pct", "p_welch"):
        assert isinstance(row[column], float) and row[column] == expected[column]
    assert row["verdict"] == expected["verdict"] and row["known_between_cv_pct"] is None
    gate = doc["gate"]
    assert gate["threshold_pct"] == 5.0 and gate["exit_code"] == proc.returncode in (0, 1)
    assert len(gate["regressions"]) == (row["verdict"] == "slower" and row["delta_pct"] > 5)


def test_json_needs_the_report(tmp_path: Path) -> None:
    proc = run_main(["bench", *TINY_ARGS, "--no-report", "--json"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("lmbench: error: --json prints the report")


@pytest.mark.parametrize("study", ["collectives", "attention"])
def test_report_json_of_a_collectives_or_attention_run_names_its_csv(tmp_path: Path, study: str) -> None:
    source = {"collectives": "h200-pair/collectives", "attention": "h200-issue14/attention-fp32"}[study]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / f"{study}.jsonl").write_bytes((REPO_ROOT / "reports" / source / f"{study}.jsonl").read_bytes())
    proc = run_main(["report", "run", "--json"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"lmbench: error: --json prints a timing report; run holds an `lmbench {study}` "
                                  f"run, whose table as numbers is {study}.csv")
    assert not (tmp_path / "run" / f"{study}.md").exists()  # refused before anything is written
