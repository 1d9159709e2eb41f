"""`lmbench nsys` on a data-parallel job (issue 13 item 3): the command every rank runs (torchrun, then each rank
under its own `nsys profile`), the per-rank kernel reports with their Communication section from nsys stats CSVs,
the summary across ranks, the no-nsys path, and the whole command end to end on 2 gloo ranks through a stand-in
nsys. Each rank's CSVs are the real H200 capture's (tests/fixtures/nsys-h200-tiny) plus that rank's SYNTHETIC NCCL
kernel rows (tests/fixtures/nsys-synthetic-nccl, README there)."""

from __future__ import annotations

import json
import re
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import REPO_ROOT, read_lines, run_main, tiny
from lmbench.analysis.groups import capture_name
from lmbench.config import BenchConfig
from lmbench.kernels import communication, nsys_csv
from lmbench.kernels.nsys_csv import REPORTS
from lmbench.kernels.report import write_kernel_report
from lmbench.measure import data_parallel
from lmbench.measure.data_parallel import job_command, plan_jobs
from lmbench.measure.launch import LaunchOptions
from lmbench.measure.sampling import Sampling
from lmbench.profilers import nsys_rank
from lmbench.profilers.nsys import NSYS_ENV, Capture, profile_command, rank_captures, rank_worker

REAL = REPO_ROOT / "tests" / "fixtures" / "nsys-h200-tiny" / "tiny-train-step-bf16-naive-b4-ctx128-detail"
SYNTHETIC = REPO_ROOT / "tests" / "fixtures" / "nsys-synthetic-nccl"
DDP = ["--parallel", "ddp", "--nproc-per-node", "2", "--timeout", "60", "--job-timeout", "200"]
# The H200 capture's configuration, run on the CPU (its ranks' kernels are the stand-in nsys's CSVs).
CAPTURED = ["--size", "tiny", "--ctx", "128", "--mode", "train-step", "--precision", "bf16", "--attention", "naive",
            "--annotate", "detail", "--warmup", "1", "--steps", "2", "--device", "cpu", "--vocab-size", "64"]


def ddp_job(**launch):
    [job] = plan_jobs([tiny(parallel="ddp", annotate="phases")], Sampling(), LaunchOptions(nproc_per_node=2, **launch))
    return job


def test_every_rank_runs_under_its_own_nsys(tmp_path: Path) -> None:
    job = ddp_job()
    capture = Capture(tmp_path, capture_name(job.config))
    command = job_command(job, tmp_path, rank_worker("/opt/nsys", capture), python="py")
    assert command[:6] == ["py", "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts"]
    at = command.index(nsys_rank.WORKER)
    assert command[at - 1] == "-m"
    # What the rank module turns its arguments into: nsys profile, with one process's options, over the job's worker.
    rank, env = nsys_rank.rank_command(command[at + 1:], python="py")
    output = str(tmp_path / f"{capture.name}.rank%q{{RANK}}")  # nsys expands %q{RANK} to each rank's RANK
    single = profile_command("/opt/nsys", job.config, capture)
    assert rank[:rank.index("--output")] == single[:single.index("--output")]  # same trace options, capture range
    assert rank[rank.index("--output"):rank.index("py")] == ["--output", output]
    assert rank[rank.index("py"):rank.index("py") + 3] == ["py", "-m", data_parallel.WORKER]
    assert env == {"LMBENCH_PROFILER": "nsys"}  # the record says what profiled it
    worker = data_parallel.worker_parser(data_parallel.WORKER, "bench").parse_args(rank[rank.index("py") + 3:])
    assert BenchConfig(**json.loads(worker.config)) == job.config and worker.backend == "gloo"
    assert worker.run_dir == tmp_path


def test_each_node_reports_its_own_ranks(tmp_path: Path) -> None:
    capture = Capture(tmp_path, "job")
    assert [c.name for c in rank_captures(ddp_job(), capture)] == ["job.rank0", "job.rank1"]
    second = ddp_job(nnodes=2, node_rank=1, rdzv_endpoint="node0:29500")
    assert [c.name for c in rank_captures(second, capture)] == ["job.rank2", "job.rank3"]
    assert [c.rep.name for c in rank_captures(second, capture)] == ["job.rank2.nsys-rep", "job.rank3.nsys-rep"]
    assert nsys_csv.split_rank("job.rank12") == ("job", 12) and nsys_csv.split_rank("job") == ("job", None)


def rank_stats(directory: Path, rank: int) -> None:
    """Rank `rank`'s stats CSVs in `directory`: the real capture's, on GPU `rank`, with that rank's synthetic rows."""
    directory.mkdir(parents=True, exist_ok=True)
    for report in REPORTS:
        real, synthetic = REAL / f"stats_{report}.csv", SYNTHETIC / f"rank{rank}_{report}.csv"
        if not synthetic.exists():
            shutil.copy(real, directory / real.name)
            continue
        frame = pd.concat([pd.read_csv(real), pd.read_csv(synthetic)], ignore_index=True)
        if "Device" in frame:
            frame["Device"] = f"NVIDIA H200 ({rank})"
        frame.sort_values("Start (ns)", kind="stable").to_csv(directory / real.name, index=False)


def brute_force(stats: dict[str, pd.DataFrame]) -> tuple[float, float]:
    """(comm ms, exposed ms) per measured step, nanosecond by nanosecond: NCCL kernel time, and the part of it during
    which no computation kernel (neither NCCL, memcpy/memset nor a Sync kernel) runs."""
    gpu = stats["cuda_gpu_trace"]
    nccl = gpu[gpu["name"].str.startswith("nccl")]
    compute = gpu[~gpu["name"].str.contains(r"^nccl|^\[CUDA mem|Sync|Memcpy")]
    lo, hi = int(nccl["start"].min()), int((nccl["start"] + nccl["duration"]).max())
    comm_on, busy = np.zeros(hi - lo, dtype=bool), np.zeros(hi - lo, dtype=bool)
    for frame, mask in ((nccl, comm_on), (compute, busy)):
        for start, duration in zip(frame["start"], frame["duration"]):
            mask[max(start - lo, 0):max(min(start + duration - lo, hi - lo), 0)] = True
    steps = 2
    return nccl["duration"].sum() / steps / 1e6, (comm_on & ~busy).sum() / steps / 1e6


@pytest.fixture(scope="module")
def job_run(tmp_path_factory) -> Path:
    """A trace run directory as `lmbench nsys` on 2 ranks leaves it, stats exported, reports not yet written."""
    run_dir = tmp_path_factory.mktemp("run")
    for rank in (0, 1):
        rank_stats(run_dir / f"job.rank{rank}", rank)
    return run_dir


def test_per_rank_reports_explain_communication_from_nsys(job_run: Path) -> None:
    for rank in (0, 1):
        capture_dir = job_run / f"job.rank{rank}"
        report = write_kernel_report(capture_dir).read_text()
        assert f"rank {rank}'s measured steps" in report and "## Communication (per measured step)" in report
        assert "`nsys stats` lists the NCCL kernels but not their messages" in report
        table = pd.read_csv(capture_dir / "kernels_communication.csv").set_index("phase")
        assert list(table.index) == ["backward", "step"] and set(table["rank"]) == {rank}  # the name's, not GPU 0's
        comm_ms, exposed_ms = brute_force(nsys_csv.read_stats(capture_dir / "stats"))
        assert comm_ms == pytest.approx((400 + 70 * rank) / 1e3)  # the synthetic kernels: 300 + 100, 350 + 120 µs
        row = table.loc["step"]
        assert row["comm_kernels_per_step"] == 2 and row["comm_ms"] == pytest.approx(comm_ms)
        assert row["exposed_ms"] == pytest.approx(exposed_ms)
        assert (100 + 20 * rank) / 1e3 < exposed_ms < comm_ms  # the kernel after the step's last is all exposed
        assert row["overlap_pct"] == pytest.approx(100 * (1 - exposed_ms / comm_ms))
        assert np.isnan(row["bytes_per_step"]) and np.isnan(row["busbw_gbps"])  # not in nsys stats: left empty
    # Re-rendered later from the files alone, the same report.
    before = (job_run / "job.rank1" / "kernels.md").read_text()
    proc = run_main(["kernels", str(job_run / "job.rank1")], cwd=job_run)
    assert proc.returncode == 0, proc.stderr
    assert (job_run / "job.rank1" / "kernels.md").read_text() == before


def test_summary_sets_the_ranks_side_by_side(job_run: Path) -> None:
    for rank in (0, 1):
        write_kernel_report(job_run / f"job.rank{rank}")
    summary = (job_run / "kernels.md").read_text()
    assert summary.count("job.rank0") == 3 + 2 and summary.count("job.rank1") == 3 + 2  # 3 phases, 2 comm rows
    table = communication.run_table(job_run)
    assert list(zip(table["capture"], table["rank"], table["phase"])) == [
        ("job.rank0", 0, "backward"), ("job.rank0", 0, "step"), ("job.rank1", 1, "backward"), ("job.rank1", 1, "step")]


def _fake_nsys(directory: Path, ranks: Path) -> Path:
    """An executable `nsys`: `profile` expands %q{RANK}, runs the rank's command for real and leaves an empty
    report; `stats` copies the CSVs prepared for the rank its report names."""
    script = directory / "nsys"
    script.write_text(f"""#!{sys.executable}
import os, re, shutil, subprocess, sys
from pathlib import Path
args = sys.argv[1:]
out = args[args.index("--output") + 1].replace("%q{{RANK}}", os.environ.get("RANK", "%q{{RANK}}"))
if args[0] == "profile":
    code = subprocess.call(args[args.index("--output") + 2:])
    Path(out + ".nsys-rep").write_bytes(b"")
    sys.exit(code)
rank = re.search(r"\\.rank(\\d+)\\.nsys-rep$", args[-1]).group(1)
for report in [args[i + 1] for i, a in enumerate(args) if a == "--report"]:
    shutil.copy(Path({str(ranks)!r}) / f"rank{{rank}}" / f"stats_{{report}}.csv", f"{{out}}_{{report}}.csv")
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.slow  # a real 2-rank gloo job on torchrun, each rank run by the stand-in nsys
def test_lmbench_nsys_of_a_ddp_job_end_to_end(tmp_path: Path) -> None:
    for rank in (0, 1):
        rank_stats(tmp_path / "ranks" / f"rank{rank}", rank)
    fake = _fake_nsys(tmp_path, tmp_path / "ranks")
    proc = run_main(["nsys", "--nsys", str(fake), *CAPTURED, *DDP, "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "tr"
    [record] = read_lines(run_dir / "results.jsonl")  # rank 0 stored the job's record
    assert record["profiler"] == "nsys" and record["distributed"]["world_size"] == 2
    name = "tiny-train-step-bf16-naive-b4-ctx128-detail-2ranks"  # a job of two ranks says so
    assert proc.stdout.strip() == (run_dir / "kernels.md").read_text().strip()  # the summary across ranks
    assert "## Communication (per measured step)" in proc.stdout and f"{name}.rank1" in proc.stdout
    assert (run_dir / "report.md").exists()
    for rank in (0, 1):
        assert (run_dir / f"{name}.rank{rank}.nsys-rep").exists()
        report = (run_dir / f"{name}.rank{rank}" / "kernels.md").read_text()
        assert f"rank {rank}'s measured steps" in report and "Softmax takes" in report  # the record's configuration found
        own = [s for s in record["rank_samples"] if s["rank"] == rank and not s["warmup"]]
        phases = pd.read_csv(run_dir / f"{name}.rank{rank}" / "kernels_phases.csv").set_index("phase")
        assert phases.at["forward", "lmbench_ms"] == pytest.approx(np.mean([s["forward_ms"] for s in own]))


def test_without_nsys_a_job_prints_the_commands_to_run_elsewhere(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.delenv(NSYS_ENV, raising=False)
    assert shutil.which("nsys") is None
    proc = run_main(["nsys", "--size", "tiny", "--device", "cpu", *DDP, "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("lmbench: error: nsys not found")
    assert lines[1].strip().startswith("python3 -m torch.distributed.run --nproc-per-node 2")
    name = re.search(r"--output 'tr/(\S+)\.rank%q\{RANK\}' ", lines[1]).group(1)  # the shell quotes nsys's %q{}
    assert name.startswith("tiny-") and f"-m {nsys_rank.WORKER} " in lines[1]
    assert [line.split()[-1] for line in lines[2:4]] == [f"tr/{name}.rank0.nsys-rep", f"tr/{name}.rank1.nsys-rep"]
    assert lines[4] == (f"then render the kernel reports there or here: lmbench kernels tr/{name}.rank0; "
                        f"lmbench kernels tr/{name}.rank1")
    assert not (tmp_path / "tr").exists()  # nothing half-made
    assert re.search(r"--env LMBENCH_PROFILER=nsys$", lines[1])
