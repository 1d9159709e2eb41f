"""Every number in the report equals the results file: Markdown tables, CSV tables and LaTeX."""

from __future__ import annotations

import csv
import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

from helpers import read_lines
from lmbench.render.timing_report import render, render_records
from lmbench.results.store import RESULTS_FILE

TIMING_COLUMNS = {"forward": "Forward (ms)", "backward": "Backward (ms)", "total": "Total (ms)"}


def parse_markdown(text: str) -> dict[str, dict[str, list[dict[str, str]]]]:
    """{group title: {table title: [row as {column: cell}]}} for every pipe table of the report."""
    groups: dict[str, dict[str, list[dict[str, str]]]] = {}
    group = table = None
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## Results"):
            group = line.removeprefix("## Results").removeprefix(":").strip()
            groups[group] = {}
        elif line.startswith("### ") and group is not None:
            table, header = line[4:].strip(), None
        elif line.startswith("|") and group is not None and table is not None:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
                groups[group][table] = []
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                groups[group][table].append(dict(zip(header, cells)))
    return groups


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def report(cli_sweep):
    records = read_lines(cli_sweep.run_dir / RESULTS_FILE)
    markdown = (cli_sweep.run_dir / "report.md").read_text()
    return cli_sweep.run_dir, records, parse_markdown(markdown), markdown


def rows_by_record(report, table: str, modes=("forward", "forward-backward")):
    """(record, markdown row) for every record of these modes, matched by its mode's group and its label."""
    _, records, groups, _ = report
    for record in (r for r in records if r["config"]["mode"] in modes):
        rows = groups[f"mode {record['config']['mode']}"][table]
        label_column = next(iter(rows[0]))
        matches = [r for r in rows if r[label_column] == record["model"]["label"]]
        assert len(matches) == 1, (table, record["model"]["label"])
        yield record, matches[0]


def test_report_has_a_group_per_mode_and_a_row_per_record(report):
    _, records, groups, markdown = report
    assert set(groups) == {"mode forward", "mode forward-backward"}
    for title, tables in groups.items():
        assert len(tables["Results Table"]) == 2
        assert "Backward/Forward Time Ratios" in tables if title.endswith("backward") else \
            "Backward/Forward Time Ratios" not in tables
    assert f"{len(records)} record(s)" in markdown


def test_results_table_cells_are_the_stored_mean_and_std(report):
    for record, row in rows_by_record(report, "Results Table"):
        phases = ["forward", "total"] + (["backward"] if record["config"]["mode"] != "forward" else [])
        assert set(row) == {"Model Size", *(TIMING_COLUMNS[p] for p in phases)}
        for phase in phases:
            s = record["stats"][phase]
            assert row[TIMING_COLUMNS[phase]] == f"{s['mean']:.2f} ± {s['std']:.2f}"


def test_results_table_cells_follow_from_the_raw_samples(report):
    """Independent of the stored statistics: mean and sample std of the non-warm-up samples."""
    for record, row in rows_by_record(report, "Results Table"):
        measured = [s for s in record["samples"] if not s["warmup"]]
        assert len(measured) == record["config"]["steps"] == 3
        forward = [s["forward_ms"] for s in measured]
        assert row["Forward (ms)"] == f"{statistics.mean(forward):.2f} ± {statistics.stdev(forward):.2f}"
        phases = [k for k in measured[0] if k.endswith("_ms") and k != "step_ms"]
        totals = [sum(s[k] for k in phases) for s in measured]
        assert row["Total (ms)"] == f"{statistics.mean(totals):.2f} ± {statistics.stdev(totals):.2f}"


def test_cv_cells_are_the_stored_cv(report):
    for record, row in rows_by_record(report, "Coefficient of Variation (CV)"):
        for phase in ("forward", "backward"):
            if phase not in record["stats"]:
                assert f"{phase.title()} CV" not in row
                continue
            s = record["stats"][phase]
            assert row[f"{phase.title()} CV"] == f"{s['cv_pct']:.1f}%" + ("*" if s["noisy"] else "")


def test_ratio_is_backward_mean_over_forward_mean(report):
    checked = 0
    for record, row in rows_by_record(report, "Backward/Forward Time Ratios", modes=("forward-backward",)):
        ratio = record["stats"]["backward"]["mean"] / record["stats"]["forward"]["mean"]
        assert row["Ratio"] == f"{ratio:.2f}x"
        checked += 1
    assert checked == 2


def test_detailed_statistics_match_the_stored_stats(report):
    for record, _ in rows_by_record(report, "Results Table"):
        rows = [r for r in report[2][f"mode {record['config']['mode']}"]["Detailed Statistics"]
                if r["Model"] == record["model"]["label"]]
        assert [r["Phase"] for r in rows] == [p for p in ("forward", "backward", "total") if p in record["stats"]]
        for row in rows:
            s = record["stats"][row["Phase"]]
            assert int(row["n"]) == s["n"] == 3
            assert float(row["Median (ms)"]) == pytest.approx(round(s["median"], 2))
            assert row["95% CI of mean, steps (ms)"] == f"{s['ci_low']:.2f} – {s['ci_high']:.2f}"
            assert row["p5 – p95 (ms)"] == f"{s['p5']:.2f} – {s['p95']:.2f}"
            assert int(row["Outliers"]) == s["outliers"]


def test_throughput_matches_the_stored_throughput(report):
    for record, row in rows_by_record(report, "Throughput, MFU and Memory"):
        assert row["Tokens/s"] == f"{record['throughput']['tokens_per_s']:,.0f}"
        assert row["MFU"] == "—"  # no datasheet peak for a CPU
        peak = max(v for phase in record["memory"].values() for v in phase.values())
        assert float(row["Peak RSS (MB)"].replace(",", "")) == pytest.approx(round(peak), abs=0.5)


TEXT_COLUMNS = {"mode", "model", "phase", "status", "oom_phase", "key", "error"}  # every other CSV cell is a number


def test_every_csv_cell_is_a_number(report):
    """Numbers only (booleans for the noise flags), units in the column names; empty only where a phase is not part
    of the row's mode."""
    run_dir, _, _, _ = report
    for kind in ("results", "cv", "ratio", "throughput", "memory", "statistics"):
        for row in read_csv(run_dir / f"{kind}.csv"):
            for column, cell in row.items():
                if column in TEXT_COLUMNS:
                    continue
                if column == "mfu_pct":
                    assert cell == "", cell  # no datasheet peak for a CPU: no number, and no text either
                elif column.endswith("_noisy"):
                    assert cell in ("True", "False", ""), (kind, column, cell)
                elif cell == "" and row["mode"] == "forward" and column.startswith("backward_"):
                    continue
                else:
                    float(cell)  # raises on text such as "1.00 ± 0.10"


def test_csv_tables_hold_the_stored_numbers(report):
    """Mean and std in columns of their own, equal to the record's statistics to the last bit."""
    run_dir, records, _, _ = report
    by_key = {r["key"]: r for r in records}
    results, cv = read_csv(run_dir / "results.csv"), read_csv(run_dir / "cv.csv")
    assert sorted(row["key"] for row in results) == sorted(by_key)
    for row, cv_row in zip(results, cv):
        stats = by_key[row["key"]]["stats"]
        assert row["mode"] == by_key[row["key"]]["config"]["mode"] and row["status"] == "ok"
        for phase in ("forward", "backward", "total"):
            if phase in stats:
                assert float(row[f"{phase}_mean_ms"]) == stats[phase]["mean"]
                assert float(row[f"{phase}_std_ms"]) == stats[phase]["std"]
                if phase != "total":
                    assert float(cv_row[f"{phase}_cv_pct"]) == stats[phase]["cv_pct"]
    for row in read_csv(run_dir / "ratio.csv"):
        stats = by_key[row["key"]]["stats"]
        assert float(row["backward_forward_ratio"]) == stats["backward"]["mean"] / stats["forward"]["mean"]
    for row in read_csv(run_dir / "statistics.csv"):
        s = by_key[row["key"]]["stats"][row["phase"]]
        assert (int(row["n"]), float(row["median_ms"]), float(row["ci_low_ms"]), float(row["ci_high_ms"])) == (
            s["n"], s["median"], s["ci_low"], s["ci_high"])


def test_markdown_cells_are_the_csv_numbers_formatted(report):
    """One computation, rendered twice: each Markdown cell is its CSV number as the report formats it."""
    run_dir, _, groups, _ = report
    shown = [row for tables in groups.values() for row in tables["Results Table"]]
    rows = read_csv(run_dir / "results.csv")
    assert len(rows) == len(shown)
    for row, md_row in zip(rows, shown):
        assert md_row["Model Size"] == row["model"]
        for phase, title in TIMING_COLUMNS.items():
            if title in md_row:
                assert md_row[title] == f"{float(row[f'{phase}_mean_ms']):.2f} ± {float(row[f'{phase}_std_ms']):.2f}"
    shown = [row for tables in groups.values() for row in tables["Throughput, MFU and Memory"]]
    for row, md_row in zip(read_csv(run_dir / "throughput.csv"), shown):
        assert md_row["Tokens/s"] == f"{float(row['tokens_per_s']):,.0f}"
        assert md_row["Params (M)"] == f"{int(row['params']) / 1e6:.1f}"


def test_latex_holds_every_table(report):
    run_dir, records, groups, _ = report
    tex = (run_dir / "report.tex").read_text()
    titles = ["Results Table", "Coefficient of Variation (CV)", "Backward/Forward Time Ratios",
              "Throughput, MFU and Memory", "Peak Memory and Key Tensor Sizes (MB)", "Detailed Statistics",
              "Mean Step across All Configurations (ms; model TFLOP/s in brackets)"]
    for title in titles:
        assert f"% {title}\n\\begin{{tabular}}" in tex
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == len(titles)
    assert "tiny(d\\_model=32,d\\_ff=64,n\\_layers=1,n\\_heads=2)" in tex  # underscores escaped
    for record in records:
        for phase in ("forward", "total"):
            s = record["stats"][phase]
            assert f"{s['mean']:.2f} ± {s['std']:.2f}" in tex
        if record["config"]["mode"] != "forward":
            ratio = record["stats"]["backward"]["mean"] / record["stats"]["forward"]["mean"]
            assert f"{ratio:.2f}x" in tex
            cv = record["stats"]["backward"]["cv_pct"]
            assert f"{cv:.1f}\\%" in tex  # % escaped


def test_one_table_reads_the_step_across_groups(report):
    """A row per group and a column per model: each record's mean step total and model TFLOP/s, as stored."""
    run_dir, records, _, markdown = report
    by_key = {r["key"]: r for r in records}
    rows = read_csv(run_dir / "across.csv")
    assert sorted(row["key"] for row in rows) == sorted(by_key)
    section = markdown.split("## Mean Step across All Configurations")[1].split("\n## ")[0]
    for row in rows:
        record = by_key[row["key"]]
        assert float(row["step_mean_ms"]) == record["stats"]["total"]["mean"]
        assert float(row["tflops_step"]) == record["throughput"]["tflops"]["total"]
        [line] = [line for line in section.splitlines() if line.startswith(f"| mode {row['mode']} ")]
        assert f"{float(row['step_mean_ms']):.2f} ({float(row['tflops_step']):.1f})" in line


def test_render_is_deterministic_and_matches_the_written_report(report):
    run_dir, _, _, markdown = report
    text, tables = render(run_dir)
    assert text == markdown
    assert set(tables) == {"results", "cv", "ratio", "throughput", "memory", "statistics", "across"}
    assert render(run_dir)[0] == text


def test_findings_are_computed_from_the_records(report):
    _, records, _, markdown = report
    fb = [r for r in records if r["config"]["mode"] == "forward-backward"]
    ratios = sorted(r["stats"]["backward"]["mean"] / r["stats"]["forward"]["mean"] for r in fb)
    assert "**backward/forward** — Backward takes " in markdown
    assert f"{ratios[0]:.2f}×" in markdown and f"{ratios[-1]:.2f}×" in markdown
    assert "no datasheet peak known for" in markdown  # CPU: MFU not computed, and the report says so


def test_a_report_keeps_the_latest_record_of_a_key(tmp_path, api_run_dir):
    lines = (api_run_dir / RESULTS_FILE).read_text().splitlines()
    first = read_lines(api_run_dir / RESULTS_FILE)[0]
    older = dict(first, stats={**first["stats"], "forward": {**first["stats"]["forward"], "mean": 999.0}})
    (tmp_path / RESULTS_FILE).write_text("\n".join([json.dumps(older), *lines]) + "\n")
    text, _ = render(tmp_path)
    assert "999.00 ±" not in text
    assert f"{first['stats']['forward']['mean']:.2f} ± {first['stats']['forward']['std']:.2f}" in text


def test_the_across_table_names_graph_replay_rows_only_where_it_has_them() -> None:
    from test_findings import record, steady
    from test_findings_truth import on_cuda
    title = "## Mean Step across All Configurations (ms; model TFLOP/s in brackets"
    markdown, tables = render_records([record("small", steady(10.0), precision=p) for p in ("fp32", "bf16")], "run")
    assert f"{title})\n" in markdown and not tables["across"]["Configuration"].str.contains("replay").any()
    replayed = [on_cuda(record("small", steady(10.0), precision=p), replay_ms=8.0) for p in ("fp32", "bf16")]
    markdown, tables = render_records(replayed, "run")
    assert f"{title}; CUDA graph replay below)\n" in markdown
    assert tables["across"]["Configuration"].str.endswith("CUDA graph replay").sum() == 2


def test_rendering_again_removes_a_table_the_run_no_longer_has(report, tmp_path: Path) -> None:
    from lmbench.render.timing_report import write_report
    run_dir = Path(shutil.copytree(report[0], tmp_path / "run"))
    (run_dir / "ranks.csv").write_text("stale\n")  # per-rank means from a job of several ranks, no longer in the run
    (run_dir / "kernels_summary.csv").write_text("kept\n")  # not a timing report's table
    write_report(run_dir)
    assert not (run_dir / "ranks.csv").exists() and (run_dir / "results.csv").exists()
    assert (run_dir / "kernels_summary.csv").read_text() == "kept\n"
