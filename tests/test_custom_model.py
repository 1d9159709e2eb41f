"""`--model MODULE:FACTORY` (measure/model_factory.py) with the small models of tests/custom_model.py, on the CPU:
bench end to end (FLOPs counted by FlopCounterMode and stored, the report with the spec as the model's label and its
unknown activation sizes as "—"), a sweep resumed beside it (the key counts the spec), compare against the built-in
tiny model, torch.profiler's trace, the nsys command printed where nsys is missing, a one-rank gloo FSDP job of a model
without `blocks` (sharded whole), and each bad factory as one line."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from custom_model import build, flops_by_hand
from helpers import read_lines, run_main, tiny
from lmbench.analysis.memory import MB, memory_table
from lmbench.config import BenchConfig
from lmbench.kernels.torch_trace import trace_files
from lmbench.measure.environment import check_fits
from lmbench.profilers.nsys import NSYS_ENV
from lmbench.results.record import read_record
from lmbench.results.sizes import tensor_bytes

SPEC = "tests.custom_model:build"
ARGS = ["--size", "tiny", "--ctx", "16", "--batch", "2", "--warmup", "1", "--steps", "2", "--vocab-size", "128",
        "--device", "cpu"]


@pytest.fixture(autouse=True)
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's plots take seconds to draw and are tested elsewhere; here only the tables are read."""
    import lmbench.render.timing_report
    monkeypatch.setattr(lmbench.render.timing_report, "figures", lambda records: iter(()))


def test_bench_sweep_resume_and_compare(tmp_path: Path) -> None:
    proc = run_main(["bench", "--model", SPEC, *ARGS, "--mode", "train-step", "--run-dir", "custom"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [record] = [read_record(d) for d in read_lines(tmp_path / "custom" / "results.jsonl")]
    config = record.config
    assert record.label == f"{SPEC}(tiny)" and record.ok
    assert record.params == sum(p.numel() for p in build(config.model_config()).parameters())
    forward = flops_by_hand(config.model_config(), 2, 16)  # embedding + MLP + head: backward is twice the forward
    assert record.data["model"]["counted_flops"] == {"forward": forward, "backward": 2 * forward, "optimizer": 0}
    assert record.throughput["flops"]["total"] == 3 * forward and record.throughput["flops_source"] == "FlopCounterMode"
    assert record.key != BenchConfig.from_dict({**record.data["config"], "model": None}).key()
    report = proc.stdout
    assert f"| {SPEC}(tiny) " in report and f"Models of your own (--model): {SPEC}" in report
    memory = next(line for line in report.split("### Peak Memory")[1].splitlines() if line.startswith(f"| {SPEC}"))
    assert memory.count("—") == 2  # residual and scores: unknown for a model of one's own

    # A sweep over ctx into the same directory: the bench's configuration is stored, so --resume skips it.
    proc = run_main(["sweep", "--model", SPEC, *ARGS, "--mode", "train-step", "--ctx", "16,8", "--resume",
                     "--run-dir", "custom"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stored = [read_record(d) for d in read_lines(tmp_path / "custom" / "results.jsonl")]
    assert [r.config.ctx for r in stored] == [16, 8] and stored[1].data["model"]["counted_flops"]["forward"] == \
        flops_by_hand(config.model_config(), 2, 8)

    # The built-in tiny model against the custom one: the model is what the comparison names as compared.
    proc = run_main(["bench", *ARGS, "--mode", "train-step", "--no-report", "--run-dir", "builtin"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = run_main(["compare", "builtin", "custom:ctx=16"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Compared: model." in proc.stdout and "| tiny " in proc.stdout


def test_profile_traces_a_custom_model(tmp_path: Path) -> None:
    proc = run_main(["profile", "--model", SPEC, *ARGS, "--trace-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [capture] = (tmp_path / "run").glob("tests.custom_model_build_tiny-*")
    assert trace_files(capture)
    [record] = [read_record(d) for d in read_lines(tmp_path / "run" / "results.jsonl")]
    assert record.profiler == "torch.profiler" and record.data["model"]["counted_flops"]["backward"] > 0


def test_nsys_without_nsys_prints_the_custom_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NSYS_ENV, raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python stays reachable, nsys does not
    proc = run_main(["nsys", "--model", SPEC, "--size", "tiny", "--trace-dir", "tr"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("lmbench: error: nsys not found")
    assert f"-m lmbench bench --size tiny --model {SPEC} --annotate phases" in proc.stderr


def test_fsdp_shards_a_model_without_blocks_whole(tmp_path: Path, one_rank: None) -> None:
    """One gloo rank in this process (conftest's one_rank: a 2-rank torchrun job would cost ~10 s)."""
    from lmbench.measure import data_parallel

    config = tiny(model=SPEC, parallel="fsdp", mode="train-step", steps=2)
    data_parallel.main(["--config", json.dumps(dataclasses.asdict(config)), "--backend", "gloo", "--timeout", "60",
                        "--run-dir", str(tmp_path)])
    [record] = [read_record(d) for d in read_lines(tmp_path / "results.jsonl")]
    assert record.ok and record.config.parallel == "fsdp" and record.throughput["flops_source"] == "FlopCounterMode"
    table = memory_table([record])
    assert list(table["params_mb"] * MB) == [record.params * 4]  # one rank's shard is the whole model
    assert table["gathered_mb"].isna().all() and table["residual_mb"].isna().all()  # unknown, not guessed


def test_sizes_before_and_after_building() -> None:
    config = tiny(model=SPEC, mode="train-step", parallel="ddp")
    before = tensor_bytes(config)
    assert before["inputs"] == 2 * 2 * 16 * 8 and before["logits"] == 2 * 16 * 256 * 4
    assert {name for name, size in before.items() if size is None} == {
        "params", "grads", "optimizer", "buckets", "unsharded_params", "residual", "scores"}
    after = tensor_bytes(config, params=1000)
    assert (after["params"], after["grads"], after["optimizer"], after["buckets"]) == (4000, 4000, 8000, 4000)
    assert after["residual"] is None and after["gathered"] == 0
    check_fits(tiny(model=SPEC), torch.device("cpu"))  # only what is known counts


# id: (arguments after `bench`, what the one error line says, whether it comes before the run starts)
BAD = {
    "not-module-colon-factory": (["--model", "custom_model"], "--model 'custom_model' is not MODULE:FACTORY", True),
    "module-not-found": (["--model", "no_such_module_here:build"], "cannot import no_such_module_here", True),
    "no-such-factory": (["--model", "tests.custom_model:missing"], "has no attribute 'missing'", True),
    "not-callable": (["--model", "tests.custom_model:NOT_CALLABLE"], "is of type int, not a callable factory", True),
    "not-a-module": (["--model", "tests.custom_model:not_a_module"], "type object, not a torch.nn.Module", False),
    "wrong-logits-shape": (["--model", "tests.custom_model:wrong_shape"],
                           "of shape (32, 128) for tokens (2, 16); expected floating-point logits", False),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_model_is_one_line(case: str, tmp_path: Path) -> None:
    """Refused before the run starts, or once the factory has built (after the status line): one error line."""
    args, message, early = BAD[case]
    proc = run_main(["bench", *args, *ARGS, "--run-dir", "run"], cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(lines) == (1 if early else 2) and lines[-1].startswith("lmbench: error: "), proc.stderr
    assert message in lines[-1]
    assert not (tmp_path / "run" / "results.jsonl").exists()


def test_a_module_in_the_working_directory_is_found(tmp_path: Path) -> None:
    """As `python -m` does: a mymodel.py beside the user needs no PYTHONPATH."""
    (tmp_path / "mymodel_in_cwd.py").write_text("from custom_model import build\n")
    proc = run_main(["bench", "--model", "mymodel_in_cwd:build", *ARGS, "--mode", "forward", "--no-report",
                     "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [record] = read_lines(tmp_path / "run" / "results.jsonl")
    assert record["model"]["label"] == "mymodel_in_cwd:build(tiny)"
