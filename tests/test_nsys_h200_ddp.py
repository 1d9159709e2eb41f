"""Communication analysis on a REAL two-rank NCCL capture: `lmbench nsys` of a DDP train step (small model, bf16,
ctx 512, batch 4) on two H200s, trimmed to measured step 2 of each rank (tests/fixtures/nsys-h200-ddp2, README
there). Unlike tests/test_nsys_ranks.py, whose NCCL rows are synthetic, these are the kernels NCCL 2.28.9 ran."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import lmbench
from helpers import REPO_ROOT
from lmbench.kernels import communication, nsys_csv
from lmbench.kernels.frame import categorize
from lmbench.results.comm_bytes import phase_bytes, step_collectives
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "nsys-h200-ddp2"
NAME = "small-train-step-bf16-sdpa-b4-ctx512-2ranks"  # a job of 2 ranks: capture_name adds them
RANKS = (0, 1)
PHASES = ("forward", "backward", "step")  # the Communication table's rows per rank: the optimizer runs no collective
# The full capture's step-2 figures (README): the trimmed step reproduces them exactly, since no activity of
# another step runs beside it. (rank, phase) -> (comm ms, exposed ms).
FULL_CAPTURE_STEP_2 = {(0, "forward"): (0.005184, 0.005184), (0, "backward"): (2.401297, 2.118226),
                       (1, "forward"): (3.888592, 3.888592), (1, "backward"): (55.849885, 48.135648)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture: reading the record takes a lock file and a kernel report writes beside the CSVs."""
    return Path(shutil.copytree(FIXTURE, tmp_path_factory.mktemp("ddp2") / "run"))


@pytest.fixture(scope="module")
def record(run_dir: Path) -> Record:
    [record] = ResultsStore(run_dir).records()
    return record


@pytest.fixture(scope="module")
def stats(run_dir: Path) -> dict[int, dict[str, pd.DataFrame]]:
    return {rank: nsys_csv.read_stats(run_dir / f"{NAME}.rank{rank}" / "stats") for rank in RANKS}


@pytest.fixture(scope="module")
def table(stats: dict[int, dict[str, pd.DataFrame]], record: Record) -> pd.DataFrame:
    """Both ranks' Communication tables, as the kernel report computes each from its own capture."""
    tables = [communication.nsys_summary(s, nsys_csv.lmbench_ranges(s["nvtx_pushpop_trace"]), rank, record)
              for rank, s in stats.items()]
    return pd.concat(tables, ignore_index=True).set_index(["rank", "phase"])


def test_every_nccl_kernel_is_communication(stats: dict[int, dict[str, pd.DataFrame]]) -> None:
    for rank in RANKS:
        names = stats[rank]["cuda_gpu_trace"]["name"]
        nccl = names[names.str.startswith("nccl")]
        assert set(nccl.str.extract(r"^ncclDevKernel_(\w+?)_")[0]) == {"AllReduce", "Broadcast"}
        # The all-reduce's name says Reduce and Sum: the reduction/norm rule would take it without the NCCL rule.
        assert {categorize(n) for n in nccl} == {"communication"}
        assert "communication" not in {categorize(n) for n in names.drop(nccl.index)}


def test_collective_kernels_per_step_and_phase(table: pd.DataFrame) -> None:
    assert list(table.index) == [(r, p) for r in RANKS for p in PHASES]
    counts = table["comm_kernels_per_step"]
    for rank in RANKS:  # DDP: the buffers' broadcast before forward, 18 gradient all-reduce kernels in backward
        assert (counts[rank, "forward"], counts[rank, "backward"], counts[rank, "step"]) == (1, 18, 19)


def test_times_match_the_full_capture(table: pd.DataFrame) -> None:
    for (rank, phase), (comm_ms, exposed_ms) in FULL_CAPTURE_STEP_2.items():
        row = table.loc[(rank, phase)]
        assert (row["comm_ms"], row["exposed_ms"]) == pytest.approx((comm_ms, exposed_ms), rel=1e-9)
    for rank in RANKS:
        step = table.loc[rank]
        assert step.at["step", "comm_ms"] == pytest.approx(step.loc[["forward", "backward"], "comm_ms"].sum())
        assert (step["exposed_ms"] <= step["comm_wall_ms"]).all() and (step["comm_wall_ms"] <= step["comm_ms"]).all()
        assert step["overlap_pct"].between(0, 100).all()
        assert step.at["forward", "overlap_pct"] == 0  # the broadcast runs alone on the GPU
        assert 5 < step.at["backward", "overlap_pct"] < 30  # backward's compute hides some of the all-reduces
        assert step.at["backward", "overlap_pct"] == pytest.approx(
            100 * (1 - step.at["backward", "exposed_ms"] / step.at["backward", "comm_wall_ms"]))


def test_rank_1_waits_for_rank_0_in_the_forward_broadcast(table: pd.DataFrame) -> None:
    # Same message, yet rank 1's broadcast kernel runs until rank 0 joins: hundreds of times longer.
    assert table.at[(1, "forward"), "comm_ms"] > 100 * table.at[(0, "forward"), "comm_ms"]
    assert table.at[(1, "step"), "comm_ms"] > 10 * table.at[(0, "step"), "comm_ms"]


def test_analytic_bytes_from_the_record(table: pd.DataFrame, record: Record) -> None:
    expected = phase_bytes(step_collectives(record.config, record.world_size), record.world_size)
    assert record.world_size == 2 and expected["step"][0] == 514_632_704
    # Independently: every fp32 gradient (the params the job counted) in backward, RoPE's fp32 cos and sin
    # (ctx x head_dim / 2 each) in forward.
    head_dim = record.data["model"]["d_model"] // record.data["model"]["n_heads"]
    assert expected["backward"][0] == 4 * record.params
    assert expected["forward"][0] == 2 * record.config.ctx * (head_dim // 2) * 4
    analytic = table[communication.ANALYTIC]
    for rank in RANKS:
        for phase in PHASES:
            assert analytic[rank, phase] == expected[phase][0]
    # nsys stats hold no message sizes: measured bytes stay empty; bus bandwidth comes from the analytic bytes.
    assert table["bytes_per_step"].isna().all() and (table["busbw_gbps"] > 0).all()


def test_kernel_report_of_each_rank(run_dir: Path) -> None:
    for rank in RANKS:
        capture = run_dir / f"{NAME}.rank{rank}"
        report = lmbench.kernel_report(capture).read_text()
        assert f"rank {rank}'s measured steps" in report and "## Communication (per measured step)" in report
        assert "Bytes/step (analytic)" in report
        top = pd.read_csv(capture / "kernels_top.csv")
        nccl = top[top["name"].str.startswith("nccl")]
        assert not nccl.empty and set(nccl["category"]) == {"communication"}
        categories = pd.read_csv(capture / "kernels_categories.csv").set_index("category")
        comm = pd.read_csv(capture / "kernels_communication.csv").set_index("phase")
        assert categories.at["communication", "step_ms"] == pytest.approx(comm.at["step", "comm_ms"])
        phases = pd.read_csv(capture / "kernels_phases.csv").set_index("phase")
        assert phases["busy_pct"].between(0, 100).all()  # side-by-side streams count once in the busy share
        steps = pd.read_csv(capture / "kernels_steps.csv")  # the kept step, timed by the record's same step
        assert list(steps["step"]) == [2] and steps["lmbench_ms"].notna().all()
    # Rank 0's host sets its backward; rank 1's GPU runs all-reduce kernels that wait for rank 0: busy, yet not
    # computing, so it is collective-bound rather than GPU-bound.
    verdicts = {rank: (run_dir / f"{NAME}.rank{rank}" / "kernels.md").read_text() for rank in RANKS}
    assert "backward launch-bound (GPU idle 81% of its span, a collective alone 4%)" in verdicts[0]
    assert "backward collective-bound (GPU idle 2% of its span, a collective alone 84%)" in verdicts[1]
    # Rank 1's all-reduces run beside backward's computation: more kernel time than span, yet a busy share below 100%.
    backward = pd.read_csv(run_dir / f"{NAME}.rank1" / "kernels_phases.csv").set_index("phase").loc["backward"]
    assert backward["kernel_ms"] > backward["span_ms"] and backward["busy_pct"] < 100
    summary = communication.run_table(run_dir)  # the run summary sets both ranks side by side
    assert list(zip(summary["rank"], summary["phase"])) == [(r, p) for r in RANKS for p in PHASES]


def test_the_run_summary_splits_the_loss_with_the_least_exposed_rank(tmp_path: Path, record: Record) -> None:
    """Each rank's nsys report sees its own rank only; the run summary sees both and splits the loss against a
    one-GPU record of the same per-rank configuration with rank 0's exposed time (2.12 ms), not rank 1's (52.02 ms,
    its waits for rank 0 included). The one-GPU record here is rank 0's own steps at 80% of their time, stored as a
    one-rank job (this capture has none of its own)."""
    from lmbench.kernels.report import write_run_summary
    from lmbench.results.record import derive

    run = Path(shutil.copytree(FIXTURE, tmp_path / "run"))
    mine = [{k: 0.8 * v if k.endswith("_ms") else v for k, v in s.items()} for s in record.rank_samples
            if s["rank"] == 0]
    one_gpu = {**record.data, "key": record.config.key(1), "samples": mine, "rank_samples": mine,
               "distributed": {**record.distributed, "world_size": 1, "ranks": record.distributed["ranks"][:1]}}
    derive(one_gpu)  # its statistics from its own samples
    ResultsStore(run).append(Record(one_gpu))
    for rank in RANKS:
        own = lmbench.kernel_report(run / f"{NAME}.rank{rank}").read_text()
        assert f"(rank {rank}'s trace)" in own  # its own rank, the only one it holds
    write_run_summary(run)
    row = pd.read_csv(run / "kernels_summary.csv")  # the phases; the weak-scaling row is in kernels.md
    assert set(row["capture"]) == {f"{NAME}.rank0", f"{NAME}.rank1"}
    summary = (run / "kernels.md").read_text()
    scaling = summary[summary.index("## Weak scaling"):]
    assert f"| {NAME} |" in scaling and "(rank 0's trace)" in scaling
    assert "another rank's ran alone 52.02 ms, waits for the other ranks included" in scaling
