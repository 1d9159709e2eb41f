"""Attention micro-benchmark records (`lmbench attention`): one per implementation, head dimension and sequence
length of a grid, in RUN_DIR/attention.jsonl, a store of its own beside results.jsonl (the same rules: one fsynced
line per record, appended under a lock, the latest record of a key wins).

A cell's record holds what the cell is (KEY_FIELDS), its status and what was measured:
- `forward_ms`: every timed forward pass, ms (the inputs require grad, so each forward builds the graph a backward
  would use: the forward that precedes training's backward);
- `backward_ms`: every timed backward pass, ms, each on the graph of a fresh untimed forward, timing the backward only;
- `memory`: `before_backward_mb`, what the cell holds once its forward has run (inputs, output and what autograd
  saved), `inputs_mb` (q, k, v, the output gradient and naive's mask), `peak_mb` (forward and backward, CUDA only)
  and `method`: "cuda_allocated" (the inputs' bytes plus what torch.cuda.memory_allocated gained over the forward,
  and for the peak over forward and backward) or "tensor_bytes" (on the CPU: the bytes of the inputs', the output's
  and the saved tensors' storages, each counted once; not the process's RSS);
- `first_call_s`: the first forward and backward, untimed by the passes; for naive-compiled it holds the compile;
- `summary`: the forward and backward samples summarised (results/stats.py), for readers of the file.

status is "ok", "oom" (`oom`: message and the phase it hit) or "unsupported" (an SDPA backend torch refused for the
cell: `unsupported.reason`, torch's reason shortened).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmbench.config import SDPA_BACKENDS  # the backends bench's --sdpa-backend takes, "auto": torch picks
from lmbench.options import fields_key
from lmbench.results.record import StoredRecord
from lmbench.results.stats import Summary, summarize
from lmbench.results.store import ResultsStore

SCHEMA = "lmbench.attention/1"
ATTENTION_FILE = "attention.jsonl"
NAIVE, COMPILED = "naive", "naive-compiled"
IMPLS = (NAIVE, *(f"sdpa-{backend}" for backend in SDPA_BACKENDS), COMPILED)
# What makes two cells the same measurement (--resume skips a key already stored, whatever its status).
KEY_FIELDS = ("impl", "head_dim", "seq_len", "batch", "heads", "precision", "causal", "device_type", "passes", "warmup",
              "compile_backend")


def measurement_key(fields: dict[str, Any]) -> str:
    return fields_key({name: fields[name] for name in KEY_FIELDS})


def new_record(fields: dict[str, Any], environment: dict[str, Any], *, forward_ms: list[float] | None = None,
               backward_ms: list[float] | None = None, memory: dict[str, Any] | None = None,
               first_call_s: float | None = None, oom: dict[str, str] | None = None,
               unsupported: str | None = None) -> AttentionRecord:
    """The record of one cell: `fields` holds KEY_FIELDS and `timestamp`; an ok cell its samples, memory and first
    call; an OOM cell `oom` ({"message", "phase"}); an unsupported one torch's reason."""
    status = "oom" if oom is not None else "unsupported" if unsupported is not None else "ok"
    data: dict[str, Any] = {"lmbench": SCHEMA, "key": measurement_key(fields), **fields, "status": status,
                            "forward_ms": forward_ms or [], "backward_ms": backward_ms or [], "memory": memory or {},
                            "first_call_s": first_call_s, "environment": environment}
    if oom is not None:
        data["oom"] = oom
    if unsupported is not None:
        data["unsupported"] = {"reason": unsupported}
    record = AttentionRecord(data)
    if record.ok:
        data["summary"] = {"forward": record.forward.as_dict(), "backward": record.backward.as_dict()}
    return record


@dataclass(frozen=True)
class AttentionRecord(StoredRecord):
    """One stored attention cell, read through named accessors."""

    @property
    def impl(self) -> str:
        return self.data["impl"]

    @property
    def head_dim(self) -> int:
        return self.data["head_dim"]

    @property
    def seq_len(self) -> int:
        return self.data["seq_len"]

    @property
    def batch(self) -> int:
        return self.data["batch"]

    @property
    def heads(self) -> int:
        return self.data["heads"]

    @property
    def precision(self) -> str:
        return self.data["precision"]

    @property
    def causal(self) -> bool:
        return self.data["causal"]

    @property
    def device_type(self) -> str:
        return self.data["device_type"]

    @property
    def passes(self) -> int:
        return self.data["passes"]

    @property
    def warmup(self) -> int:
        return self.data["warmup"]

    @property
    def compile_backend(self) -> str | None:
        return self.data["compile_backend"]

    @property
    def forward_ms(self) -> list[float]:
        return self.data["forward_ms"]

    @property
    def backward_ms(self) -> list[float]:
        return self.data["backward_ms"]

    @property
    def forward(self) -> Summary:
        return summarize(self.forward_ms)

    @property
    def backward(self) -> Summary:
        return summarize(self.backward_ms)

    @property
    def memory_mb(self) -> float | None:
        """Memory in use just before backward (module docstring: how it was read)."""
        return self.data["memory"].get("before_backward_mb")

    @property
    def inputs_mb(self) -> float | None:
        return self.data["memory"].get("inputs_mb")

    @property
    def peak_mb(self) -> float | None:
        return self.data["memory"].get("peak_mb")

    @property
    def memory_method(self) -> str | None:
        return self.data["memory"].get("method")

    @property
    def first_call_s(self) -> float | None:
        return self.data["first_call_s"]

    @property
    def unsupported_reason(self) -> str | None:
        return (self.data.get("unsupported") or {}).get("reason")


class AttentionStore(ResultsStore):
    """RUN_DIR/attention.jsonl, with the results store's locking, appending and torn-line rules."""

    file = ATTENTION_FILE
    schema = SCHEMA
    wrap = AttentionRecord
