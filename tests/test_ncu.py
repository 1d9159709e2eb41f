"""`lmbench ncu`: the ncu commands it builds, the no-ncu path and its refusals, and the kernel table parsed from
real H200 captures (tests/fixtures/ncu-h200-tiny, ncu-h200-2.7B)."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT, run_cli, run_main, tiny
from lmbench.errors import LmbenchError
from lmbench.kernels import ncu_csv
from lmbench.kernels.ncu_report import configurations
from lmbench.profilers.ncu import Capture, import_command, missing_ncu_message, nvtx_filter, profile_command
from lmbench.profilers.ncu_options import SECTIONS, NcuOptions

TINY = REPO_ROOT / "tests" / "fixtures" / "ncu-h200-tiny"
TINY_CAPTURE = TINY / "tiny-train-step-bf16-sdpa-b4-ctx512-ncu-forward"
LARGE_CAPTURE = REPO_ROOT / "tests" / "fixtures" / "ncu-h200-2.7B" / "2.7B-train-step-bf16-sdpa-b4-ctx512-ncu-forward"


def _raw_rows(capture: Path) -> list[dict[str, str]]:
    """The raw page's rows as text, the units row first."""
    with open(capture / ncu_csv.RAW_FILE, newline="") as f:
        return list(csv.DictReader(f))


def _parser_reads(column: str) -> bool:
    """Whether kernels/ncu_csv.py reads this raw-page column: what the fixtures were trimmed to (their README)."""
    tensor = ncu_csv.TENSOR.match(column)
    return (column in ncu_csv.IDENTITY or column in ncu_csv.METRICS or column.startswith(ncu_csv.NVTX_COLUMN)
            or (tensor is not None and not tensor["src"].startswith("int")))


def test_the_fixtures_hold_only_the_columns_the_parser_reads() -> None:
    for capture in (TINY_CAPTURE, LARGE_CAPTURE):
        header = list(_raw_rows(capture)[0])
        assert [c for c in header if not _parser_reads(c)] == []
        assert ncu_csv.DURATION in header and any(ncu_csv.TENSOR.match(c) for c in header)


def test_durations_are_the_raw_pages_own() -> None:
    table = ncu_csv.kernel_table(TINY_CAPTURE / ncu_csv.RAW_FILE)
    units, *rows = _raw_rows(TINY_CAPTURE)
    assert len(table) == len(rows) == 60 and units[ncu_csv.DURATION] == "us"
    assert list(table["duration_us"]) == [float(r[ncu_csv.DURATION]) for r in rows]
    assert set(table["phase"]) == {"forward"} and set(table["step"]) == {0}
    assert list(table["name"]) == [r["Kernel Name"] for r in rows]


def test_units_and_thousands_separators() -> None:
    large = ncu_csv.kernel_table(LARGE_CAPTURE / ncu_csv.RAW_FILE)
    gemm = large[large["name"].str.startswith("nvjet")].iloc[0]
    # 2.7B's fused QKV projection, 2048 tokens x 2560 -> 7680, counts 2·M·N·K tensor FLOPs ("80,530,636,800").
    flops = gemm["tensor_flop_per_s"] * gemm["duration_ns"] / 1e9
    assert flops == pytest.approx(2 * 2048 * 2560 * 7680, rel=1e-4)
    # This file writes the GEMM's DRAM rate in Tbyte/s, the others in Gbyte/s: both become bytes/s.
    assert gemm["dram_bytes_per_s"] == pytest.approx(1.056371e12)
    assert gemm["dram_peak_bytes_per_s"] == pytest.approx(1504 * 3.198152e9)
    assert ncu_csv.si_factor("Gbyte/s") == 1e9 and ncu_csv.si_factor("us") == 1e-6 and ncu_csv.si_factor("Ghz") == 1e9
    with pytest.raises(LmbenchError, match="unknown unit 'furlong'"):
        ncu_csv.si_factor("furlong", "x")


def test_the_2_7b_gemm_is_compute_bound_and_elementwise_kernels_memory_bound() -> None:
    table = ncu_csv.kernel_table(LARGE_CAPTURE / ncu_csv.RAW_FILE)
    gemm = table[table["category"] == "gemm"]
    assert len(gemm) == 1
    row = gemm.iloc[0]
    # Checked in the data: 730 TFLOP/s over 1.06 TB/s of DRAM is 691 FLOP/byte, above the dense bf16 HGMMA ridge
    # (859 TFLOP/s at the 1.59 GHz it ran at, over 4.81 TB/s: 179); it reaches 85% of that roof, as its SM does.
    assert row["roof"] == "tensor bf16→fp32 (hgmma)"
    assert row["intensity"] == pytest.approx(691.3, rel=1e-3) and row["ridge"] == pytest.approx(178.6, rel=1e-3)
    assert row["bound"] == "compute" and row["roof_pct"] == pytest.approx(row["sm_pct"], rel=1e-3)
    elementwise = table[table["category"] == "elementwise"]
    assert len(elementwise) >= 5 and (elementwise["bound"] == "memory").all()
    assert (elementwise["intensity"] < 1).all() and (elementwise["roof"] == "fp32").all()


def test_configurations_group_repeated_launches() -> None:
    launches = ncu_csv.kernel_table(TINY_CAPTURE / ncu_csv.RAW_FILE)
    configs = configurations(launches)
    assert len(configs) == 21 and configs["launches"].sum() == 60
    assert configs["share_pct"].sum() == pytest.approx(100)
    attention = configs[configs["category"] == "attention"].iloc[0]
    assert attention["bound"] == "compute" and attention["tensor_pct"] > 95


def test_nvtx_place() -> None:
    stack = '769  "lmbench:measured_0:none:none:RGB:0xff:REGISTERED:measured_0"  "lmbench:forward:x:forward"  ' \
            '"lmbench:layer_3:x:layer_3" '
    assert ncu_csv.nvtx_place(stack) == (0, "forward", "forward/layer_3")
    assert ncu_csv.nvtx_place("812 ", unplaced="backward") == (None, "backward", "")  # autograd's thread
    assert ncu_csv.nvtx_place('1 "lmbench:measured_2:x:measured_2" ') == (2, "", "")


def test_a_capture_without_tensor_metrics_says_so(tmp_path: Path) -> None:
    capture = tmp_path / "run" / "cap"
    capture.mkdir(parents=True)
    with open(TINY_CAPTURE / ncu_csv.RAW_FILE, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if not ncu_csv.TENSOR.match(name)]
    with open(capture / ncu_csv.RAW_FILE, "w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows([[r[i] for i in keep] for r in rows])
    proc = run_main(["kernels", str(capture)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Tensor-core FLOPs were not captured" in proc.stdout
    assert "No lmbench record was found" in proc.stdout  # no ncu.json, no results.jsonl
    assert not (tmp_path / "run" / "kernels.md").exists()  # no run summary of phases an ncu capture lacks


def test_damaged_raw_pages_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "cap"
    bad.mkdir()
    (bad / ncu_csv.RAW_FILE).write_text("==PROF== nothing\n")
    proc = run_main(["kernels", str(bad)], cwd=tmp_path)
    assert proc.returncode == 2 and "is not an ncu raw page" in proc.stderr and len(proc.stderr.splitlines()) == 1
    (bad / ncu_csv.RAW_FILE).write_text('"ID","Kernel Name"\n"",""\n"0","k"\n')
    proc = run_main(["kernels", str(bad)], cwd=tmp_path)
    assert proc.returncode == 2 and "lacks the column(s) gpu__time_duration.sum" in proc.stderr


def test_kernels_renders_the_h200_capture_with_its_record(tmp_path: Path) -> None:
    proc = run_main(["kernels", str(TINY_CAPTURE), "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "out" / "kernels.md").read_text()
    assert proc.stdout.strip() == report.strip()
    assert report.startswith(f"# Kernel report (Nsight Compute) — {TINY_CAPTURE.name}")
    assert "NVIDIA H200" in report and "tiny · train-step · bf16" in report  # the run's record, found by its key
    assert "## Kernels (21 launch configurations, 60 launches" in report and "## By kernel category" in report
    assert "2 of 21 launch configurations are compute-bound" in report
    assert "tensor roofs used: tensor bf16→fp32 (hgmma)" in report
    for name in ("ncu", "ncu_categories", "ncu_launches"):
        assert (tmp_path / "out" / f"kernels_{name}.csv").exists()


@pytest.mark.parametrize("phase, expected", [
    ("forward", ["--nvtx-include", "lmbench@measured_0/forward/"]),
    ("optimizer", ["--nvtx-include", "lmbench@measured_0/optimizer/"]),
    ("backward", ["--nvtx-exclude", "lmbench@measured_0/forward/", "--nvtx-exclude", "lmbench@measured_0/optimizer/"]),
])
def test_profile_command_for_each_phase(tmp_path: Path, phase: str, expected: list[str]) -> None:
    config = tiny(mode="train-step", precision="bf16", annotate="phases", steps=5)
    options = NcuOptions(phase=phase)
    capture = Capture.of(tmp_path, config, options)
    command = profile_command("/opt/ncu", config, options, capture)
    assert nvtx_filter(phase) == expected
    assert command[:6] == ["/opt/ncu", "--clock-control", "none", "--profile-from-start", "off", "--nvtx"]
    assert command[6:6 + len(expected)] == expected
    assert command[command.index("--filter-mode") + 1] == "per-launch-config"
    assert command[command.index("--launch-count") + 1] == "1"
    assert [command[i + 1] for i, a in enumerate(command) if a == "--section"] == list(SECTIONS["roofline"])
    assert command[command.index("--export") + 1] == str(tmp_path / f"{capture.name}")
    child = command[command.index(sys.executable):]
    assert child[1:4] == ["-m", "lmbench", "bench"] and child[-2:] == ["--run-dir", str(tmp_path)]
    assert child[child.index("--steps") + 1] == "1"  # one measured step: the filter names measured_0
    assert capture.name.endswith(f"-ncu-{phase}")
    assert import_command("ncu", capture) == ["ncu", "--import", str(capture.rep), "--csv", "--page", "raw"]


def test_options_refuse_what_cannot_be_profiled() -> None:
    with pytest.raises(LmbenchError, match=r"unknown phase 'loss' \(choose from: forward, backward, optimizer\)"):
        NcuOptions(phase="loss")
    with pytest.raises(LmbenchError, match="kernels must be a positive integer"):
        NcuOptions(kernels=0)
    with pytest.raises(LmbenchError, match="--mode forward runs no backward phase"):
        NcuOptions(phase="backward").check(tiny(mode="forward", annotate="phases"))
    with pytest.raises(LmbenchError, match="--annotate phases or detail"):
        NcuOptions().check(tiny(annotate="off"))


def test_bad_phase_is_one_line(tmp_path: Path) -> None:
    proc = run_main(["ncu", "--size", "tiny", "--phase", "loss"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("lmbench: error: unknown phase 'loss' (choose from: forward, backward, "
                                   "optimizer)")
    proc = run_main(["ncu", "--size", "tiny", "--mode", "forward", "--phase", "optimizer"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "runs no optimizer phase" in proc.stderr


def test_without_ncu_prints_the_commands_to_run_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real entry point, without Nsight Compute: the commands, exit 2, nothing made."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python stays reachable, ncu does not
    assert shutil.which("ncu") is None
    proc = run_cli(["ncu", "--size", "2.7B", "--mode", "train-step", "--precision", "bf16", "--ctx", "512",
                    "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("lmbench: error: ncu not found")
    assert lines[1].strip().startswith("ncu --clock-control none") and "lmbench@measured_0/forward/" in lines[1]
    assert "python3 -m lmbench bench --size 2.7B" in lines[1] and "--steps 1" in lines[1]
    capture = "tr/2.7B-train-step-bf16-sdpa-b4-ctx512-ncu-forward"
    assert lines[2].strip() == f"mkdir -p {capture} && ncu --import {capture}.ncu-rep --csv --page raw > {capture}/ncu_raw.csv"
    assert lines[3] == f"then render the kernel table there or here: lmbench kernels {capture}"
    assert not (tmp_path / "tr").exists()  # nothing half-made


def test_missing_message_matches_the_commands(tmp_path: Path) -> None:
    config, options = tiny(annotate="phases"), NcuOptions(phase="backward", kernels=3, sections="detailed")
    capture = Capture.of(tmp_path, config, options)
    message = missing_ncu_message(config, options, capture)
    assert "--nvtx-exclude" in message and "--launch-count 3" in message and "ComputeWorkloadAnalysis" in message


def _fake_ncu(directory: Path) -> Path:
    """An executable `ncu`: profiling runs the child command for real and leaves an empty report; --import prints
    the H200 tiny capture's raw page."""
    script = directory / "ncu"
    script.write_text(f"""#!{sys.executable}
import subprocess, sys
from pathlib import Path
args = sys.argv[1:]
if "--import" in args:
    sys.stdout.write(Path({str(TINY_CAPTURE / ncu_csv.RAW_FILE)!r}).read_text())
    sys.exit(0)
child = args[args.index("--force-overwrite") + 1:]
code = subprocess.call(child)
Path(args[args.index("--export") + 1] + ".ncu-rep").write_bytes(b"")
sys.exit(code)
""")
    script.chmod(0o755)
    return script


@pytest.mark.slow  # the stand-in ncu runs the real child benchmark, `python -m lmbench bench`
def test_lmbench_ncu_end_to_end_with_a_stand_in_ncu(tmp_path: Path) -> None:
    fake = _fake_ncu(tmp_path)
    proc = run_main(["ncu", "--ncu", str(fake), "--size", "tiny", "--mode", "train-step", "--ctx", "16", "--batch", "2",
                     "--warmup", "1", "--steps", "3", "--device", "cpu", "--vocab-size", "64", "--trace-dir", "tr"],
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    capture = tmp_path / "tr" / "tiny-train-step-fp32-sdpa-b2-ctx16-ncu-forward"
    report = (capture / "kernels.md").read_text()
    assert proc.stdout.strip() == report.strip()
    assert report.startswith(f"# Kernel report (Nsight Compute) — {capture.name}")
    # The record the child stored (one measured step) is found by the key ncu.json names.
    assert "tiny · train-step · fp32" in report and "1 measured and 1 warm-up step(s)" in report
    meta = (capture / "ncu.json").read_text()
    assert '"phase": "forward"' in meta and "--filter-mode per-launch-config" in meta
    assert (tmp_path / "tr" / "results.jsonl").exists() and (tmp_path / "tr" / f"{capture.name}.ncu-rep").exists()


@pytest.mark.skipif(shutil.which("ncu") is None or not __import__("torch").cuda.is_available(),
                    reason="needs Nsight Compute and a CUDA device")
def test_lmbench_ncu_end_to_end_on_the_gpu(tmp_path: Path) -> None:
    """The real ncu on a tiny forward: every kernel of the phase gets a duration, a throughput and a bound."""
    proc = run_main(["ncu", "--size", "tiny", "--mode", "forward", "--precision", "bf16", "--ctx", "16", "--batch", "2",
                     "--warmup", "1", "--device", "cuda", "--vocab-size", "64", "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    capture = tmp_path / "tr" / "tiny-forward-bf16-sdpa-b2-ctx16-ncu-forward"
    table = ncu_csv.kernel_table(capture / ncu_csv.RAW_FILE)
    assert len(table) >= 5 and (table["duration_ns"] > 0).all() and table["bound"].isin(["compute", "memory"]).all()
    assert set(table["phase"]) == {"forward"} and (capture / "kernels.md").exists()
