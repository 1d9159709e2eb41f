"""`lmbench nsys`: the nsys commands it builds, finding nsys, the no-nsys path, and the whole command
end to end through a stand-in nsys that runs the real child benchmark and replays `nsys stats` CSVs
captured on the H200 (tests/fixtures/nsys-h200-tiny)."""

from __future__ import annotations

import dataclasses

import shutil
import stat
import sys
from pathlib import Path
from typing import Callable

import pytest

from helpers import REPO_ROOT, run_cli, run_main, tiny
from lmbench.kernels.nsys_csv import REPORTS
from lmbench.cli import cli
from lmbench.config import BenchConfig
from lmbench.errors import LmbenchError
from lmbench.measure.data_parallel import Job
from lmbench.analysis.groups import capture_name
from lmbench.profilers.ncu import find_ncu
from lmbench.profilers.ncu_options import NCU_ENV
from lmbench.profilers.nsys import NSYS_ENV, Capture, find_nsys, missing_nsys_message, profile_command, stats_command

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "nsys-h200-tiny"
FIXTURE_CAPTURE = "tiny-train-step-bf16-naive-b4-ctx128-detail"
FIXTURE_ARGS = ["--size", "tiny", "--ctx", "128", "--mode", "train-step", "--precision", "bf16", "--attention", "naive",
                "--annotate", "detail", "--warmup", "1", "--steps", "2", "--device", "cpu", "--vocab-size", "64"]


def test_profile_command_traces_the_capture_range_and_reruns_the_same_config(tmp_path: Path) -> None:
    config = tiny(mode="train-step", precision="bf16", annotate="detail", tf32=False)
    capture = Capture(tmp_path / "run", capture_name(config))
    command = profile_command("/opt/nsys", config, capture)
    assert command[:2] == ["/opt/nsys", "profile"]
    for option in ("--trace=cuda,nvtx,osrt,cublas", "--capture-range=cudaProfilerApi", "--capture-range-end=stop",
                   "--python-backtrace=cuda"):
        assert option in command
    assert command[command.index("--output") + 1] == str(capture.base)
    child = command[command.index(sys.executable):]
    assert child[1:4] == ["-m", "lmbench", "bench"]
    assert child[-2:] == ["--run-dir", str(capture.run_dir)]
    # The child's arguments rebuild the very same configuration through the CLI's own parser.
    context = cli.commands["bench"].make_context("bench", child[4:-2])
    fields = {f.name for f in dataclasses.fields(BenchConfig)}
    assert BenchConfig(**{k: v for k, v in context.params.items() if k in fields}) == config
    assert context.params["repeats"] == 1 and context.params["report"]  # one process, its report beside the capture


def test_stats_command_asks_for_every_report_as_csv(tmp_path: Path) -> None:
    capture = Capture(tmp_path, "x")
    command = stats_command("nsys", capture)
    assert command[:2] == ["nsys", "stats"] and "--format" in command and command[command.index("--format") + 1] == "csv"
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--report"] == list(REPORTS)
    assert command[command.index("--output") + 1] == str(tmp_path / "x" / "stats")
    assert command[-1] == str(tmp_path / "x.nsys-rep")


def test_capture_names_say_what_was_profiled() -> None:
    assert capture_name(tiny(mode="forward", precision="bf16", ctx=512, batch=4)) == "tiny-forward-bf16-sdpa-b4-ctx512"
    assert capture_name(tiny(annotate="detail", d_model=32, n_heads=2)).startswith("tiny_d_model32_n_heads2-")
    assert capture_name(tiny(annotate="detail")).endswith("-detail")
    # A job's ranks in the name: its one-GPU baseline, the same per-rank configuration, captures beside it.
    assert capture_name(tiny(parallel="ddp"), 2) == capture_name(tiny(parallel="ddp"), 1) + "-2ranks"


def _fake_nsys(directory: Path) -> Path:
    """An executable `nsys`: `profile` runs the child command for real and leaves an empty report;
    `stats` copies the H200 fixture's CSVs to the requested prefix."""
    script = directory / "nsys"
    script.write_text(f"""#!{sys.executable}
import shutil, subprocess, sys
from pathlib import Path
args = sys.argv[1:]
out = args[args.index("--output") + 1]
if args[0] == "profile":
    child = args[args.index("--output") + 2:]
    code = subprocess.call(child)
    Path(out + ".nsys-rep").write_bytes(b"")
    sys.exit(code)
for report in [args[i + 1] for i, a in enumerate(args) if a == "--report"]:
    shutil.copy(Path({str(FIXTURE / FIXTURE_CAPTURE)!r}) / f"stats_{{report}}.csv", f"{{out}}_{{report}}.csv")
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("find, env, tool", [(find_nsys, NSYS_ENV, "nsys"), (find_ncu, NCU_ENV, "ncu")])
def test_find_tool_prefers_option_then_env_then_path(find: Callable[..., str | None], env: str, tool: str,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nsys and ncu are found the same way (profilers/tool_capture.py find_tool): --TOOL, then $ENV, then PATH."""
    fake = tmp_path / tool
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(env, raising=False)
    assert find() == str(fake)
    monkeypatch.setenv(env, str(fake))
    assert find() == str(fake)
    monkeypatch.setenv(env, str(tmp_path / "missing"))
    with pytest.raises(LmbenchError, match=env):
        find()
    with pytest.raises(LmbenchError, match=f"--{tool}"):
        find(str(tmp_path / "nope"))
    monkeypatch.delenv(env)
    monkeypatch.setenv("PATH", "")
    assert find() is None


def test_without_nsys_prints_the_commands_to_run_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nsys's subprocess smoke test (the real entry point, without Nsight Systems)."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python stays reachable, nsys does not
    assert shutil.which("nsys") is None
    proc = run_cli(["nsys", "--size", "tiny", "--mode", "train-step", "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("lmbench: error: nsys not found")
    assert lines[1].strip().startswith("nsys profile ") and "--capture-range=cudaProfilerApi" in lines[1]
    assert "python3 -m lmbench bench --size tiny --mode train-step --annotate phases --run-dir tr" in lines[1]
    assert lines[2].strip().startswith("nsys stats ") and lines[3].startswith("then render")
    assert not (tmp_path / "tr").exists()  # nothing half-made


def test_missing_message_matches_the_commands(tmp_path: Path) -> None:
    config = tiny(annotate="phases")
    message = missing_nsys_message(Job(config), Capture(tmp_path, capture_name(config)))
    assert "--annotate phases" in message and str(tmp_path) in message


def test_nsys_needs_ranges(tmp_path: Path) -> None:
    proc = run_main(["nsys", "--size", "tiny", "--annotate", "off"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lmbench: error: lmbench nsys needs ranges to place kernels in phases: use --annotate phases or detail"


@pytest.mark.slow  # the stand-in nsys is a process, and it runs the real child benchmark, `python -m lmbench bench`
def test_lmbench_nsys_end_to_end_with_a_stand_in_nsys(tmp_path: Path) -> None:
    fake = _fake_nsys(tmp_path)
    proc = run_main(["nsys", "--nsys", str(fake), *FIXTURE_ARGS, "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "tr"
    capture_dir = run_dir / FIXTURE_CAPTURE
    report = (capture_dir / "kernels.md").read_text()
    assert proc.stdout.strip() == report.strip()
    assert report.startswith(f"# Kernel report — {FIXTURE_CAPTURE}")
    assert "## Inside attention (forward)" in report and "Softmax takes" in report
    assert (run_dir / "results.jsonl").exists() and (run_dir / f"{FIXTURE_CAPTURE}.nsys-rep").exists()
    summary = (run_dir / "kernels.md").read_text()
    assert FIXTURE_CAPTURE in summary and summary.count(FIXTURE_CAPTURE) == 3  # forward, backward, optimizer rows
