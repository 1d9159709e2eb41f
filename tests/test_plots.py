"""Plots: PNG files drawn from stored records, linked from report.md, and drawing the numbers the analysis computes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from helpers import REPO_ROOT, tiny
from lmbench.render import plots
from lmbench.analysis.findings.timing import flops_scaling
from lmbench.analysis.memory import memory_table
from lmbench.analysis.groups import group_records
from lmbench.render.timing_report import plot_lines, render, write_report
from lmbench.results.store import RESULTS_FILE, ResultsStore, latest_per_key
from lmbench.results.stats import power_law_fit
from lmbench.studies.sweep import run_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORTS = REPO_ROOT / "reports"
COMMITTED = sorted(p.parent.name for p in REPORTS.glob(f"*/{RESULTS_FILE}") if (p.parent / "report.md").exists())
LINK = re.compile(r"!\[([^\]]*)\]\((plots/[^)]+\.png)\)")


def linked(markdown: str) -> list[str]:
    """The plot files report.md links, in order; links sit in its Plots section, each under its own heading."""
    section = markdown.split("\n## Plots\n", 1)[1]
    links = LINK.findall(section)
    assert len(links) == len(LINK.findall(markdown)), "a plot linked outside the Plots section"
    for alt, path in links:
        assert f"### {alt}\n\n![{alt}]({path})" in section
    return [path for _, path in links]


def check_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] == 4 and image.shape[0] >= 300 and image.shape[1] >= 500, image.shape
    assert image[..., :3].std() > 0.05, f"{path} is blank"
    return image


def check_report_dir(out: Path) -> list[str]:
    """Every linked plot exists as a valid PNG and every PNG under plots/ is linked; returns the plot names."""
    links = linked((out / "report.md").read_text())
    files = sorted(f"plots/{p.name}" for p in (out / "plots").glob("*")) if (out / "plots").exists() else []
    assert sorted(links) == files
    for link in links:
        check_png(out / link)
    return [Path(link).stem for link in links]


def records_of(run_dir: Path) -> list[dict]:
    return latest_per_key(ResultsStore(run_dir).records())


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / run_dir.name
    out.mkdir()
    shutil.copy(run_dir / RESULTS_FILE, out / RESULTS_FILE)
    return out


@pytest.fixture(scope="module")
def scaling_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny depths at ctx 16 (distinct FLOPs, so a fit) and the shallowest again at ctx 32 (a second
    context, so memory against ctx); forward-backward with 2 warm-up steps; report written."""
    run_dir = tmp_path_factory.mktemp("plots_run")
    common = dict(mode="forward-backward", d_model=32, d_ff=64, n_heads=2, vocab_size=128, warmup=2, steps=3)
    configs = [tiny(n_layers=n, **common) for n in (1, 2, 3)] + [tiny(n_layers=1, ctx=32, **common)]
    run_sweep(configs, ResultsStore(run_dir))
    write_report(run_dir)
    return run_dir


def draw_into(records: list, out_dir: Path) -> dict:
    """Every planned plot of the records drawn into out_dir; {name: the data drawn}."""
    drawn: dict = {}
    plots.write_pngs(out_dir, plots.figures(records, drawn), plots.TIMING_PLOTS)
    return drawn


@pytest.fixture(scope="module")
def scaling_drawn(scaling_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return draw_into(records_of(scaling_run), tmp_path_factory.mktemp("plots_out"))


def test_the_cli_sweep_report_links_exactly_the_plots_it_wrote(cli_sweep) -> None:
    names = check_report_dir(cli_sweep.run_dir)
    # 2 modes x 2 sizes of identical shape: one FLOP count per group, so no scaling plot; CPU: no MFU; one ctx
    assert names == ["steps-forward-fp32", "steps-forward-backward-fp32", "cv", "phases"]
    assert [p.name for p in plots.plan(records_of(cli_sweep.run_dir))] == names
    assert render(cli_sweep.run_dir)[0] == (cli_sweep.run_dir / "report.md").read_text()


def test_scaling_fit_is_power_law_fit_of_the_stored_means(scaling_run: Path, scaling_drawn: dict) -> None:
    names = check_report_dir(scaling_run)
    assert names[0] == "scaling" and "memory-ctx" in names and "mfu" not in names
    records = [r for r in records_of(scaling_run) if r.data["config"]["ctx"] == 16]
    by_depth = sorted(records, key=lambda r: r.data["config"]["n_layers"])
    series = {s["label"]: s for s in scaling_drawn["scaling"]["series"]}
    assert set(series) == {"forward-backward fp32 ctx 16", "forward-backward fp32 ctx 32"}
    drawn = series["forward-backward fp32 ctx 16"]
    assert drawn["flops"] == [r.data["throughput"]["flops"]["total"] for r in by_depth]
    assert drawn["time_ms"] == [r.data["stats"]["total"]["mean"] for r in by_depth]
    assert drawn["sizes"] == [r.data["model"]["label"] for r in by_depth]
    exponent, prefactor, r2, *_ = power_law_fit(drawn["flops"], drawn["time_ms"])
    assert drawn["fit"] == {"exponent": exponent, "prefactor": prefactor, "r2": r2}
    finding = flops_scaling(records)
    assert finding.numbers["exponent"] == pytest.approx(exponent) and finding.numbers["r2"] == pytest.approx(r2)
    assert series["forward-backward fp32 ctx 32"]["fit"] is None  # one size at ctx 32: a point, no fit


def test_the_scaling_legend_states_exponent_and_r2(scaling_run: Path) -> None:
    records = records_of(scaling_run)
    figure, data = plots.draw_scaling(plots.groups_of(records), plots.plan(records)[0])
    ax = figure.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "FLOPs" in ax.get_xlabel() and "ms" in ax.get_ylabel()
    fit = data["series"][0]["fit"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"  fit: time ∝ FLOPs^{fit['exponent']:.2f}, R² = {fit['r2']:.3f}" in legend
    assert sum("fit:" in text for text in legend) == 1


def test_fewer_than_three_sizes_draw_points_without_a_fit_and_one_size_no_scaling_plot(scaling_run: Path, tmp_path) -> None:
    two = [r for r in records_of(scaling_run) if r.data["config"]["ctx"] == 16 and r.data["config"]["n_layers"] < 3]
    drawn = draw_into(two, tmp_path / "two")
    assert [s["fit"] for s in drawn["scaling"]["series"]] == [None]
    assert len(drawn["scaling"]["series"][0]["flops"]) == 2
    one = two[:1]
    assert "scaling" not in [p.name for p in plots.plan(one)]
    assert "scaling" not in draw_into(one, tmp_path / "one")
    assert not (tmp_path / "one" / "scaling.png").exists()


def test_single_size_run_report_has_no_scaling_plot(api_run_dir: Path, tmp_path) -> None:
    run_dir = copy_run(api_run_dir, tmp_path)
    write_report(run_dir)
    names = check_report_dir(run_dir)
    assert "scaling" not in names and "memory-ctx" not in names and "mfu" not in names
    assert {"cv", "phases"} <= set(names)


def test_step_series_mark_the_warmup_steps(scaling_run: Path, scaling_drawn: dict) -> None:
    records = {r.data["model"]["label"]: r for r in records_of(scaling_run) if r.data["config"]["ctx"] == 16}
    data = scaling_drawn["steps-forward-backward-fp32-ctx-16"]
    assert data["warmup_steps"] == [0, 1]
    assert [s["label"] for s in data["series"]] == sorted(records, key=lambda label: records[label].data["config"]["n_layers"])
    for series in data["series"]:
        samples = records[series["label"]].samples
        assert series["step"] == [s["step"] for s in samples] == list(range(5))  # warm-up steps included
        assert series["warmup"] == [s["warmup"] for s in samples] == [True, True, False, False, False]
        assert series["total_ms"] == pytest.approx([s["forward_ms"] + s["backward_ms"] for s in samples])
    figure, _ = plots.draw_steps(plots.groups_of(records_of(scaling_run)), plots.Plot("x", "x", "steps", "forward-backward fp32 ctx 16"))
    ax = figure.axes[0]
    (shade,) = ax.patches  # the shaded warm-up span covers steps 0 and 1 only
    xs = shade.get_path().transformed(shade.get_patch_transform()).vertices[:, 0]
    assert (xs.min(), xs.max()) == (-0.5, 1.5)
    assert any("warm-up" in t.get_text() for t in ax.get_legend().get_texts())
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert [list(line.get_xdata()) for line in hollow] == [[0, 1]] * 3


def test_memory_against_ctx_is_the_memory_table(scaling_run: Path, scaling_drawn: dict) -> None:
    records = records_of(scaling_run)
    table = memory_table(records)
    series = {s["label"]: s for s in scaling_drawn["memory-ctx"]["series"]}
    shallow = series["tiny(d_model=32,d_ff=64,n_layers=1,n_heads=2) forward-backward fp32"]
    rows = table[table["label"] == "tiny(d_model=32,d_ff=64,n_layers=1,n_heads=2)"].sort_values("ctx")
    assert shallow["ctx"] == [16, 32]
    assert shallow["peak_mb"] == list(rows["peak_mb"]) and shallow["beyond_state_mb"] == list(rows["beyond_state_mb"])
    assert scaling_drawn["memory-ctx"]["peak"] == "peak RSS"


def test_oom_records_are_left_out_of_the_drawn_numbers(tmp_path) -> None:
    records = records_of(REPORTS / "h200-oom")
    drawn = draw_into(records, tmp_path)
    assert sorted(drawn) == ["cv", "mfu", "phases", "steps-train-step-bf16"]
    assert [s["label"] for s in drawn["steps-train-step-bf16"]["series"]] == ["small"]
    (phases,) = drawn["phases"]["groups"]
    assert phases["sizes"] == ["small", "10B"] and phases["oom"] == ["10B"]
    assert phases["mean_ms"]["optimizer"][1] == 0.0
    assert drawn["cv"]["groups"][0]["sizes"] == ["small"]
    assert [s["sizes"] for s in drawn["mfu"]["series"]] == [["small"]]
    only_oom = [r for r in records if r.data["status"] == "oom"]
    assert plots.plan(only_oom) == [] and draw_into(only_oom, tmp_path / "none") == {}
    assert not (tmp_path / "none").exists()
    assert plot_lines([]) == ["None: no configuration finished.", ""]


def test_h200_seed_plots() -> None:
    # Read in place (nothing is written): test_committed_reports redraws these plots and requires them identical.
    run_dir = REPORTS / "h200-seed"
    names = check_report_dir(run_dir)
    assert names == ["scaling", "steps-forward-backward-fp32", "steps-train-step-fp32", "steps-forward-backward-bf16",
                     "steps-train-step-bf16", "cv", "phases", "mfu"]  # one ctx: no memory-against-ctx plot
    records = records_of(run_dir)
    groups, planned = plots.groups_of(records), {p.name: p for p in plots.plan(records)}
    drawn = {name: plots.DRAW[name](groups, planned[name]) for name in ("scaling", "mfu")}
    for (group, members), series in zip(group_records(records), drawn["scaling"][1]["series"]):
        finding = flops_scaling(members)
        assert series["fit"]["exponent"] == pytest.approx(finding.numbers["exponent"])
        assert f"FLOPs^{series['fit']['exponent']:.2f} (R² = {series['fit']['r2']:.3f}, 5 sizes)" in finding.claim
    mfu = {(s["label"], size): v for s in drawn["mfu"][1]["series"] for size, v in zip(s["sizes"], s["mfu_pct"])}
    assert len(mfu) == 20
    for record in records:
        label = f"{record.config.mode} {record.config.precision}"
        assert mfu[(label, record.data["model"]["label"])] == pytest.approx(100 * record.data["throughput"]["mfu"]["total"])
    # drawing is deterministic: the same records give the same bytes
    assert plots.png_bytes(drawn["scaling"][0]) == (run_dir / "plots" / "scaling.png").read_bytes()


def test_h200_memory_plots() -> None:
    # Read in place (nothing is written): test_committed_reports redraws these plots and requires them identical.
    run_dir = REPORTS / "h200-memory"
    names = check_report_dir(run_dir)
    assert "scaling" not in names and {"memory-ctx", "mfu", "cv", "phases"} <= set(names)
    assert len([n for n in names if n.startswith("steps-")]) == 12
    records = records_of(run_dir)
    (memory,) = [p for p in plots.plan(records) if p.name == "memory-ctx"]
    _, drawn = plots.draw_memory_ctx(plots.groups_of(records), memory)
    assert {s["label"]: s["ctx"] for s in drawn["series"]} == {
        f"2.7B {mode} {precision}": [128, 256, 512] for mode in ("forward", "train-step") for precision in ("fp32", "bf16")}
    assert drawn["log_y"] == [False, True]  # forward's few hundred MB beside train-step's ~13 GB beyond the state


def test_stale_plots_are_removed(api_run_dir: Path, tmp_path) -> None:
    run_dir = copy_run(api_run_dir, tmp_path)
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "scaling.png").write_bytes(PNG_MAGIC)
    (run_dir / "plots" / "attention-fp32-hd64.png").write_bytes(PNG_MAGIC)  # another report's, in the same directory
    write_report(run_dir)
    assert not (run_dir / "plots" / "scaling.png").exists()
    assert (run_dir / "plots" / "attention-fp32-hd64.png").read_bytes() == PNG_MAGIC
    (run_dir / "plots" / "attention-fp32-hd64.png").unlink()  # what is left is what report.md links
    check_report_dir(run_dir)


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_reports_link_their_committed_plots(name: str) -> None:
    """The committed report directories were regenerated with plots: links, files and plan agree."""
    run_dir = REPORTS / name
    links = linked((run_dir / "report.md").read_text())
    assert sorted(links) == sorted(f"plots/{p.name}" for p in (run_dir / "plots").glob("*"))
    assert [Path(link).stem for link in links] == [p.name for p in plots.plan(records_of(run_dir))]
    for link in links:
        assert (run_dir / link).read_bytes()[:8] == PNG_MAGIC
