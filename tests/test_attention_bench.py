"""`lmbench attention` on the CPU: the grid end to end through the CLI (tables, plots, fits, findings, the report
again from the stored records), an out-of-memory cell through the test hook with the grid going on, --resume
skipping stored cells, the report again from the stored records, a cell refused before it could exhaust host memory, and bad input as one line."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
import torch

from helpers import read_lines, run_main

from lmbench.errors import LmbenchError
from lmbench.measure import attention
from lmbench.measure.attention import _reason, cell_fields, measure_cell
from lmbench.measure.attention_options import AttentionOptions
from lmbench.results.attention import IMPLS

GRID = ["--head-dim", "16,32", "--seq-len", "64,128,256", "--passes", "3", "--warmup", "1", "--device", "cpu"]
MB = 2**20
EAGER = tuple(impl for impl in IMPLS if impl != "naive-compiled")  # compiling is tested on a grid of its own


def test_attention_grid_end_to_end(tmp_path: Path) -> None:
    proc = run_main(["attention", *GRID, "--impl", ",".join(EAGER), "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    report = (run / "attention.md").read_text()
    assert proc.stdout.strip() == report.strip()
    rows = list(csv.DictReader((run / "attention.csv").open()))
    assert [(r["impl"], int(r["head_dim"]), int(r["seq_len"])) for r in rows] == \
        [(impl, d, t) for impl in EAGER for d in (16, 32) for t in (64, 128, 256)]
    status = {(r["impl"], int(r["head_dim"]), int(r["seq_len"])): r["status"] for r in rows}
    for impl in ("naive", "sdpa-auto", "sdpa-math"):  # torch runs these on any CPU
        assert {s for (i, _, _), s in status.items() if i == impl} == {"ok"}
    records = {(r["impl"], r["head_dim"], r["seq_len"]): r for r in read_lines(run / "attention.jsonl")}
    for row in rows:
        record = records[(row["impl"], int(row["head_dim"]), int(row["seq_len"]))]
        if row["status"] == "unsupported":  # a backend torch refuses here is a cell of its own, with torch's reason
            assert record["unsupported"]["reason"] and row["note"] == record["unsupported"]["reason"]
            continue
        assert len(record["forward_ms"]) == len(record["backward_ms"]) == 3
        assert float(row["forward_ms"]) == pytest.approx(statistics.fmean(record["forward_ms"]))
        assert float(row["backward_ms"]) == pytest.approx(statistics.fmean(record["backward_ms"]))
        naive = next(r for r in rows if r["impl"] == "naive" and r["head_dim"] == row["head_dim"]
                     and r["seq_len"] == row["seq_len"])
        assert float(row["forward_speedup"]) == pytest.approx(float(naive["forward_ms"]) / float(row["forward_ms"]))
        assert record["memory"]["method"] == "tensor_bytes" and record["memory"]["peak_mb"] is None
    for (impl, d, t), record in records.items():  # the bytes a naive cell holds before backward, as counted
        if impl == "naive":
            q_bytes, scores = 8 * t * d * 4, 8 * t * t * 4  # batch 8, one head, fp32
            assert record["memory"]["inputs_mb"] * MB == 4 * q_bytes + t * t  # q, k, v, the output gradient, the mask
            assert record["memory"]["before_backward_mb"] * MB >= 4 * q_bytes + t * t + q_bytes + scores
    fits = list(csv.DictReader((run / "attention-fits.csv").open()))
    naive_memory = [f for f in fits if f["impl"] == "naive" and f["quantity"] == "memory_mb"]
    assert len(naive_memory) == 2 and all(f["n"] == "3" and 1 < float(f["exponent"]) < 2.1 for f in naive_memory)
    flash_memory = [f for f in fits if f["impl"] == "sdpa-auto" and f["quantity"] == "memory_mb"]
    assert all(float(f["exponent"]) < min(float(n["exponent"]) for n in naive_memory) for f in flash_memory)
    for topic in ("naive memory before backward", "naive forward time", "largest length that fits",
                  "fastest implementation", "speedup against naive"):
        assert f"**{topic}** — " in report
    assert "naive 256 (the largest measured) at every head dim" in report
    for d in (16, 32):
        assert (run / "plots" / f"attention-fp32-b8-h1-causal-cpu-hd{d}.png").stat().st_size > 0
    assert (run / "attention.tex").read_text().count(r"\toprule") == len(EAGER)
    assert "naive hd 16 T 64: forward" in proc.stderr  # a progress line per cell


def test_compiled_naive_matches_naive_and_its_compile_is_kept_out_of_the_passes(tmp_path: Path) -> None:
    proc = run_main(["attention", "--impl", "naive,naive-compiled", "--head-dim", "16", "--seq-len", "64,128",
                     "--passes", "3", "--warmup", "1", "--device", "cpu", "--compile-backend", "eager",
                     "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = {(r["impl"], r["seq_len"]): r for r in read_lines(tmp_path / "run" / "attention.jsonl")}
    for t in (64, 128):
        compiled, naive = records[("naive-compiled", t)], records[("naive", t)]
        assert compiled["status"] == "ok" and compiled["compile_backend"] == "eager"
        assert naive["compile_backend"] is None
        assert compiled["first_call_s"] * 1e3 > max(compiled["forward_ms"])  # the compile is in the first call only
        assert compiled["memory"]["inputs_mb"] == naive["memory"]["inputs_mb"]  # the same tensors, the same mask
    assert "- compile (eager; the first forward + backward): " in (tmp_path / "run" / "attention.md").read_text()


def _out_of_memory_in(monkeypatch: pytest.MonkeyPatch, impl: str, head_dim: int, seq_len: int, phase: str) -> None:
    """The cell (impl, head_dim, seq_len) raises torch.OutOfMemoryError as it enters `phase`."""
    run_cell, enter, cell = attention._run_cell, attention.enter, {}

    def running(fields: dict, device: torch.device, progress: dict) -> dict:
        cell.update(fields)
        return run_cell(fields, device, progress)

    def entering(progress: dict, name: str) -> None:
        enter(progress, name)
        if (cell["impl"], cell["head_dim"], cell["seq_len"], name) == (impl, head_dim, seq_len, phase):
            raise torch.OutOfMemoryError("out of memory on purpose")

    monkeypatch.setattr(attention, "_run_cell", running)
    monkeypatch.setattr(attention, "enter", entering)


def test_an_oom_cell_is_stored_and_the_grid_goes_on_then_resume_skips_stored_cells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = ["--impl", "naive,sdpa-auto", "--head-dim", "16", "--passes", "2", "--warmup", "0", "--device", "cpu",
             "--run-dir", "run"]
    _out_of_memory_in(monkeypatch, "naive", 16, 128, "backward")
    proc = run_main(["attention", *small, "--seq-len", "64,128"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_lines(tmp_path / "run" / "attention.jsonl")
    assert [(r["impl"], r["seq_len"], r["status"]) for r in records] == [
        ("naive", 64, "ok"), ("sdpa-auto", 64, "ok"), ("naive", 128, "oom"), ("sdpa-auto", 128, "ok")]
    assert records[2]["oom"]["phase"] == "backward" and "on purpose" in records[2]["oom"]["message"]
    assert not records[2]["forward_ms"] and "naive hd 16 T 128: out of memory in backward" in proc.stderr
    report = (tmp_path / "run" / "attention.md").read_text()
    assert "| 16         | " in report and "OOM" in report and "naive 64 (128 out of memory)" in report

    monkeypatch.undo()
    resumed = run_main(["attention", *small, "--seq-len", "64,128,256", "--resume"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("stored already, skipped (--resume)") == 4  # the OOM cell too: it is a result
    records = read_lines(tmp_path / "run" / "attention.jsonl")
    assert [(r["impl"], r["seq_len"], r["status"]) for r in records[4:]] == [("naive", 256, "ok"), ("sdpa-auto", 256, "ok")]
    report = (tmp_path / "run" / "attention.md").read_text()
    rerendered = run_main(["report", "run", "--out", "again"], cwd=tmp_path)  # from the stored records only
    assert rerendered.returncode == 0 and (tmp_path / "again" / "attention.md").read_text() == report


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA memory, fused SDPA backends)")
def test_on_cuda_memory_is_the_allocators_and_a_real_oom_is_stored_and_released(tmp_path: Path) -> None:
    # cuBLAS allocates a workspace (32 MiB on the H200) through the caching allocator on a thread's first matmul and
    # keeps it: one for this thread, one for autograd's backward thread. Create both before counting, so only what
    # the cells keep counts.
    (torch.ones(8, 8, device="cuda", requires_grad=True) @ torch.ones(8, 8, device="cuda")).sum().backward()
    before = torch.cuda.memory_allocated()
    proc = run_main(["attention", "--impl", "naive,sdpa-flash", "--head-dim", "16,32", "--seq-len", f"256,{2**17}",
                     "--passes", "3", "--warmup", "1", "--device", "cuda", "--run-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = {(r["impl"], r["head_dim"], r["seq_len"]): r for r in read_lines(tmp_path / "run" / "attention.jsonl")}
    for d in (16, 32):
        naive, huge = records[("naive", d, 256)], records[("naive", d, 2**17)]
        memory = naive["memory"]
        assert naive["status"] == "ok" and memory["method"] == "cuda_allocated"
        assert memory["inputs_mb"] * MB == 4 * 8 * 256 * d * 4 + 256 * 256  # q, k, v, output gradient, mask
        assert memory["peak_mb"] >= memory["before_backward_mb"] >= memory["inputs_mb"] + 8 * 256 * 256 * 4 / MB
        assert huge["status"] == "oom" and huge["oom"]["phase"] == "first call"  # (8, 1, 2^17, 2^17) fp32 scores
        flash = records[("sdpa-flash", d, 256)]  # flash attention runs fp16 and bf16 only: torch says so
        assert flash["status"] == "unsupported" and flash["unsupported"]["reason"]
    assert torch.cuda.memory_allocated() <= before + MB  # what the cells allocated, the OOM ones too, is released


def test_a_cpu_cell_beyond_the_machine_is_refused_before_it_runs() -> None:
    options = AttentionOptions(impl="naive", head_dim="16", seq_len=str(2**22), device="cpu")
    record = measure_cell(cell_fields(options, "naive", 16, 2**22, torch.device("cpu")), torch.device("cpu"), {})
    assert record.status == "oom" and record.oom_phase == "before running"
    assert record.oom_message.startswith("refused before running: three (B, h, T, T) score tensors need ")


def test_an_unsupported_backend_reads_torchs_warnings_without_their_headers() -> None:
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # as torch 2.11 warned on the H200 for sdpa-flash in fp32, in this order
        where = " (Triggered internally at /pytorch/aten/src/ATen/native/transformers/cuda/sdp_utils.cpp:986.)"
        warnings.warn("Memory efficient kernel not used because:" + where)
        warnings.warn("Memory Efficient attention has been runtime disabled." + where)
        warnings.warn("Flash attention kernel not used because:" + where)
        warnings.warn("Expected query, key and value to all be of dtype: {Half, BFloat16}. Got Query dtype: float, "
                      "Key dtype: float, and Value dtype: float instead." + where)
    assert _reason(caught, "No available kernel. Aborting execution.") == \
        "Expected query, key and value to all be of dtype: {Half, BFloat16}. Got Query dtype: float, Key dtype: " \
        "float, and Value dtype: float instead."
    assert _reason([], "No available kernel. Aborting execution.\nmore") == "No available kernel. Aborting execution."


@pytest.mark.parametrize("args, message", [
    (["--seq-len", "0"], "--seq-len: '0' is not a positive integer"),
    (["--head-dim", "16,,32"], "--head-dim has an empty item in '16,,32'"),
    (["--impl", "naive,flash"], "unknown implementation 'flash' (choose from: naive, sdpa-auto, "),
    (["--passes", "0"], "passes must be a positive integer, got 0"),
    (["--resume"], "--resume needs --run-dir pointing at the interrupted attention run"),
    (["--impl", "naive-compiled", "--compile-backend", "nope", "--device", "cpu"], "unknown torch.compile backend 'nope'"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_main(["attention", *args], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"lmbench: error: {message}")
    assert list(tmp_path.iterdir()) == []  # refused before any run directory was made


def test_options_validate_themselves_for_the_api() -> None:
    with pytest.raises(LmbenchError, match="warmup must be zero or more"):
        AttentionOptions(warmup=-1)
    with pytest.raises(LmbenchError, match="batch must be an int"):
        AttentionOptions(batch="8")  # type: ignore[arg-type]
    options = AttentionOptions(impl="naive-compiled,naive", seq_len="1024,256,1024")
    assert options.impls() == ("naive", "naive-compiled") and options.seq_lens() == (256, 1024)
