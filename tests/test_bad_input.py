"""Bad input through the CLI's entry point: exit code 2, exactly one stderr line `lmbench: error: ...`, no
traceback, nothing on stdout, nothing stored.

Each case runs `lmbench ...` through lmbench.cli.main in this process (helpers.run_main), from a working
directory of its own; each command's real `python -m lmbench` entry point has its subprocess smoke test elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import run_main

TINY = ["--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "0", "--steps", "1", "--vocab-size", "64",
        "--device", "cpu"]

# id: (arguments, text the one error line must contain); "{dir}" is the case's working directory.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "unknown-size": (["bench", "--size", "huge"], ["unknown size 'huge'"]),
    "d-model-not-divisible-by-heads": (["bench", "--size", "tiny", "--d-model", "66"],
                                       ["d_model 66 is not divisible by n_heads 4"]),
    "odd-head-dimension": (["bench", "--size", "tiny", "--d-model", "36", "--n-heads", "4"],
                           ["head dimension 9", "odd"]),
    "batch-zero": (["bench", "--size", "tiny", "--batch", "0"], ["batch must be a positive integer, got 0"]),
    "ctx-negative": (["bench", "--size", "tiny", "--ctx", "-1"], ["ctx must be a positive integer, got -1"]),
    "steps-zero": (["bench", "--size", "tiny", "--steps", "0"], ["steps must be a positive integer, got 0"]),
    "warmup-negative": (["bench", "--size", "tiny", "--warmup", "-1"], ["warmup", "-1"]),
    "batch-not-an-integer": (["bench", "--size", "tiny", "--batch", "two"], ["--batch", "two"]),
    "precision-fp8": (["bench", "--size", "tiny", "--precision", "fp8"], ["unknown precision 'fp8'"]),
    "fp16-on-cpu-bench": (["bench", *TINY, "--precision", "fp16"], ["fp16", "cpu"]),
    "tf32-on-cpu-bench": (["bench", *TINY, "--tf32"], ["tf32", "cpu"]),
    "fp16-on-cpu-sweep": (["sweep", *TINY, "--precision", "fp16"], ["fp16", "cpu"]),
    "tf32-on-cpu-sweep": (["sweep", *TINY, "--tf32"], ["tf32", "cpu"]),
    "tf32-with-bf16": (["bench", "--size", "tiny", "--tf32", "--precision", "bf16"], ["--tf32", "bf16"]),
    "bf16-params-under-fp32": (["bench", "--size", "tiny", "--param-dtype", "bf16"],
                               ["--param-dtype bf16 needs --precision bf16, not fp32"]),
    "bf16-params-in-a-job": (["bench", "--size", "tiny", "--param-dtype", "bf16", "--precision", "bf16", "--parallel",
                              "ddp"], ["--param-dtype bf16 runs in one process"]),
    "sdpa-backend-without-a-cpu-kernel": (["bench", *TINY, "--sdpa-backend", "cudnn"], ["cudnn", "no CPU kernel"]),
    "sdpa-backend-sweep-without-a-cpu-kernel": (["sweep", *TINY, "--sdpa-backend", "math,efficient"],
                                                ["efficient", "no CPU kernel"]),
    "sdpa-backend-with-naive": (["bench", *TINY, "--attention", "naive", "--sdpa-backend", "flash"],
                                ["--sdpa-backend flash", "naive"]),
    "optimizer-without-train-step": (["bench", *TINY, "--optimizer", "adamw-fused"], ["--optimizer", "train-step"]),
    "compile-reduce-overhead-with-cuda-graph": (["bench", "--size", "tiny", "--compile", "reduce-overhead",
                                                 "--cuda-graph"], ["reduce-overhead", "--cuda-graph"]),
    "compile-with-detail-ranges": (["bench", *TINY, "--compile", "default", "--annotate", "detail"],
                                   ["--compile default", "--annotate detail"]),
    "sweep-unknown-mode": (["sweep", *TINY, "--mode", "forward,sideways"], ["unknown mode 'sideways'"]),
    "sweep-list-item-not-an-integer": (["sweep", *TINY, "--ctx", "16,abc"], ["--ctx", "'abc'"]),
    "sweep-resume-without-run-dir": (["sweep", *TINY, "--resume"], ["--resume", "--run-dir"]),
    "run-dir-empty": (["bench", *TINY, "--run-dir", ""], ["--run-dir", "empty name"]),
    "run-dir-a-results-file": (["sweep", *TINY, "--run-dir", "x.jsonl"], ["x.jsonl names a results file"]),
    "trace-dir-empty": (["profile", *TINY, "--trace-dir", ""], ["--trace-dir", "empty name"]),
    "unknown-option": (["bench", "--size", "tiny", "--bogus", "1"], ["--bogus"]),
    "report-garbage-results-file": (["report", "{dir}/garbage"],
                                    ["{dir}/garbage/results.jsonl", "not an lmbench results file"]),
    "report-csv-file": (["report", "{dir}/table.csv"], ["{dir}/table.csv"]),
    "report-no-results": (["report", "{dir}/empty"], ["no lmbench results", "{dir}/empty"]),
    "report-empty-results-file": (["report", "{dir}/blank"], ["{dir}/blank"]),
    # an override of 0 must be refused like any other non-positive dimension, not silently ignored
    "d-model-zero": (["bench", *TINY, "--d-model", "0"], ["d_model"]),
    # values beyond what any machine can hold (terabytes: the check is a lower bound, and a CPU run that passes it
    # but still outgrows RAM meets the kernel's OOM killer): refused before building, the sizes named
    "batch-2**63": (["bench", *TINY, "--batch", str(2**63)], ["logits", "refused before building"]),
    "ctx-beyond-memory": (["bench", *TINY, "--ctx", str(10**10)], ["one step needs at least", "logits"]),
    "vocab-beyond-memory": (["sweep", *TINY, "--vocab-size", str(2**40)], ["params", "refused before building"]),
    "d-model-beyond-memory": (["bench", *TINY, "--d-model", str(2**30)], ["params", "refused before building"]),
    "seed-above-2**64": (["bench", *TINY, "--seed", str(2**64 + 1)], ["seed must be between 0 and 2**64 - 1"]),
    "steps-beyond-memory": (["bench", *TINY, "--steps", str(10**12)], ["steps must be at most 10,000,000"]),
    "warmup-counts-beyond-memory": (["warmup", *TINY, "--counts", f"0,{10**12}"], ["warmup must be at most"]),
    "repeats-beyond-reason": (["bench", *TINY, "--repeats", str(10**9)], ["repeats must be at most 10,000"]),
    # paths the system refuses: the path and the problem named, before anything is measured
    "run-dir-name-too-long": (["bench", *TINY, "--run-dir", "x" * 300], ["File name too long", "x" * 20]),
    "run-dir-under-a-file": (["sweep", *TINY, "--run-dir", "{dir}/table.csv/run"],
                             ["{dir}/table.csv/run", "Not a directory"]),
    "results-file-a-directory": (["bench", *TINY, "--run-dir", "{dir}/dir-results"],
                                 ["{dir}/dir-results/results.jsonl is not a file"]),
    "report-out-under-a-file": (["report", "{dir}/good", "--out", "{dir}/table.csv/out"], ["{dir}/table.csv/out"]),
    "compare-out-under-a-file": (["compare", "{dir}/good", "{dir}/good", "--out", "{dir}/table.csv/c.md"],
                                 ["{dir}/table.csv"]),
    # records with the schema tag but missing or mistyped fields: the file and the line named
    "record-without-config": (["report", "{dir}/no-config"],
                              ["{dir}/no-config/results.jsonl line 2: damaged record", "no 'config'"]),
    "record-config-a-string": (["compare", "{dir}/good", "{dir}/config-str"],
                               ["{dir}/config-str/results.jsonl line 2", "'config' is str"]),
    "record-samples-an-int": (["report", "{dir}/samples-int"], ["line 2", "'samples' is int, not a list"]),
    "record-sample-without-warmup": (["report", "{dir}/sample-bad"], ["line 2", "sample 0: no 'warmup' flag"]),
    "record-config-refused": (["report", "{dir}/batch-str"], ["line 2", "batch must be an int, got 'two'"]),
    "record-unknown-status": (["report", "{dir}/status"], ["line 2", "status 'done' is not one of ok, oom"]),
    "record-ok-without-stats": (["report", "{dir}/no-stats"], ["line 2", "without statistics"]),
    "resume-on-a-damaged-record": (["sweep", *TINY, "--resume", "--run-dir", "{dir}/no-config"],
                                   ["{dir}/no-config/results.jsonl line 2: damaged record"]),
}
if not torch.cuda.is_available():
    CASES["cuda-without-a-gpu"] = (["bench", "--size", "tiny", "--device", "cuda"], ["cuda"])


def _damaged(record: dict) -> dict[str, dict]:
    """Copies of a good stored record, each damaged in one way a hand edit or a foreign tool might."""
    def copy(**changes: object) -> dict:
        damaged = json.loads(json.dumps(record))
        for name, value in changes.items():
            if value is DELETE:
                del damaged[name]
            else:
                damaged[name] = value
        return damaged

    return {"no-config": copy(config=DELETE), "config-str": copy(config="abc"), "samples-int": copy(samples=5),
            "sample-bad": copy(samples=[{"step": 0}]), "batch-str": copy(config={**record["config"], "batch": "two"}),
            "status": copy(status="done"), "no-stats": copy(stats=None)}


DELETE = object()


@pytest.fixture(scope="module")
def good_record(tmp_path_factory) -> str:
    """One stored line of a real tiny run, measured once for the module."""
    run_dir = tmp_path_factory.mktemp("good")
    proc = run_main(["bench", *TINY, "--no-report", "--run-dir", str(run_dir)], run_dir)
    assert proc.returncode == 0, proc.stderr
    return (run_dir / "results.jsonl").read_text()


def _prepare(cwd: Path, good: str) -> None:
    """Files the cases point at (made in every case directory; cheap)."""
    (cwd / "good").mkdir()
    (cwd / "good" / "results.jsonl").write_text(good)
    for name, record in _damaged(json.loads(good)).items():
        (cwd / name).mkdir()
        (cwd / name / "results.jsonl").write_text(good + json.dumps(record) + "\n")
    (cwd / "dir-results" / "results.jsonl").mkdir(parents=True)
    (cwd / "garbage").mkdir()
    (cwd / "garbage" / "results.jsonl").write_bytes(b"\x00\x13 not json at all \xff\nline two\n")
    (cwd / "table.csv").write_text("Model Size,Forward (ms)\ntiny,1.00 ± 0.10\n")
    (cwd / "empty").mkdir()
    (cwd / "blank").mkdir()
    (cwd / "blank" / "results.jsonl").write_text("")


def _check_one_error_line(proc, needles: list[str], cwd: Path) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {lines}"
    assert lines[0].startswith("lmbench: error: ")
    for needle in needles:
        assert needle.replace("{dir}", str(cwd)) in lines[0]
    assert proc.stdout == ""
    assert not (cwd / "runs").exists()  # nothing measured, nothing stored


def _run_case(case: str, cwd: Path):
    return run_main([a.replace("{dir}", str(cwd)) for a in CASES[case][0]], cwd)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_error_line(tmp_path, good_record, case):
    _prepare(tmp_path, good_record)
    _check_one_error_line(_run_case(case, tmp_path), CASES[case][1], tmp_path)


def test_the_whole_bad_input_list_in_one_process_leaves_no_traceback(tmp_path, good_record):
    """Every case above, one after another in one process (as a script looping over them would): no traceback
    anywhere, exit 2 each time, and nothing left behind that changes the next case's answer."""
    _prepare(tmp_path, good_record)
    outcomes = {case: _run_case(case, tmp_path) for case in CASES}
    tracebacks = [case for case, proc in outcomes.items() if "Traceback" in proc.stderr + proc.stdout]
    assert tracebacks == []
    assert {case: proc.returncode for case, proc in outcomes.items() if proc.returncode != 2} == {}


@pytest.mark.parametrize("options", [{"warmup": 1.5}, {"seed": "abc"}, {"tf32": "no"}, {"batch": True},
                                     {"d_model": "32"}, {"size": 3}])
def test_the_python_api_refuses_wrong_types_in_one_line(options: dict) -> None:
    from lmbench import BenchConfig, LmbenchError

    field = next(iter(options))
    with pytest.raises(LmbenchError, match=f"^{field} must be a") as info:
        BenchConfig(**options)
    assert "\n" not in str(info.value)


def test_sampling_and_profiler_options_check_their_types_too() -> None:
    from lmbench import LmbenchError, Sampling
    from lmbench.config import ProfileOptions

    with pytest.raises(LmbenchError, match="^repeats must be an int"):
        Sampling(repeats="3")
    with pytest.raises(LmbenchError, match="^record_shapes must be a bool"):
        ProfileOptions(record_shapes="yes")
    assert Sampling(target_ci=1, max_time=5).max_time == 5  # an int is a fine float


@pytest.mark.parametrize("args", [["bench", "--size", "x" * 100_000], ["bench", "--batch", "9" * 5000 + "x"]])
def test_a_huge_value_is_echoed_cut_to_200_characters(tmp_path: Path, args: list[str]) -> None:
    proc = run_main(args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("lmbench: error: ") and len(proc.stderr) < 400 and "…'" in proc.stderr
