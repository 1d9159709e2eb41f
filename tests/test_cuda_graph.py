"""`--cuda-graph`: refused clearly where a graph cannot run; on CUDA, replays of the captured step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import run_main, tiny
from lmbench.errors import LmbenchError
from lmbench.measure.harness import measure


def test_refused_on_cpu_and_with_fp16(tmp_path: Path) -> None:
    proc = run_main(["bench", "--size", "tiny", "--device", "cpu", "--cuda-graph"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lmbench: error: --cuda-graph needs CUDA (CUDA graphs replay GPU work); this run is on cpu"
    with pytest.raises(LmbenchError, match="does not support fp16"):
        tiny(cuda_graph=True, precision="fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA graph capture)")
@pytest.mark.parametrize("mode", ["forward", "forward-backward", "train-step"])
def test_graph_replays_the_whole_step(mode: str) -> None:
    result = measure(tiny(device="cuda", mode=mode, precision="bf16", cuda_graph=True, steps=5))
    assert result.status == "ok" and "error" not in result.graph, result.graph
    assert len(result.graph["samples_ms"]) == 5 and result.graph["stats"]["mean"] > 0
    eager = sum(sum(v for k, v in s.items() if k.endswith("_ms") and k != "step_ms")
                for s in result.samples if not s["warmup"]) / 5
    assert result.graph["stats"]["mean"] < eager  # the tiny model's eager step is all host overhead
