"""Collective bandwidth records (`lmbench collectives`): one per collective, message size and job, in
RUN_DIR/collectives.jsonl, a store of its own beside results.jsonl (same rules: one fsynced line per record,
appended under a lock by rank 0, the latest record of a key wins).

Definitions are nccl-tests' (its doc/PERFORMANCE.md), with n ranks and a step time t:
- size S: the bytes of the larger buffer of one rank: the buffer for all_reduce and broadcast, the gathered
  output for all_gather_into_tensor, the input to be scattered for reduce_scatter_tensor, the whole send buffer
  for all_to_all_single. The element count of the last three is rounded down to a multiple of n (at least n), as
  nccl-tests does, so S can be a little below the size asked for (`requested_bytes`);
- algorithm bandwidth algbw = S / t, in GB/s of 10^9 bytes;
- bus bandwidth busbw = algbw x factor: 2(n-1)/n for all_reduce, (n-1)/n for all_gather, reduce_scatter and
  all_to_all, 1 for broadcast. It is the rate each rank's link carries, comparable across collectives and n;
- t, the collective's time: each rank's mean over its timed steps, the slowest rank's mean taken (nccl-tests
  `-a 3`; its default `-a 1` averages the ranks, which `rank_mean_ms` keeps as well).

A record keeps every rank's timed steps (`samples_ms[rank][step]`, ms) and what is derived from them (`summary`,
for readers of the file; the accessors below derive again from the samples). A size whose buffers do not fit is
stored with status "oom" and no samples.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from lmbench.options import fields_key
from lmbench.results.record import StoredRecord
from lmbench.results.store import ResultsStore

# `lmbench collectives`: the torch.distributed collectives it times, under the names torch gives them.
COLLECTIVE_OPS = ("all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "broadcast", "all_to_all_single")

SCHEMA = "lmbench.collectives/1"
COLLECTIVES_FILE = "collectives.jsonl"
# The fields that make two measurements the same measurement (--resume skips a key already stored).
KEY_FIELDS = ("op", "requested_bytes", "dtype", "device_type", "backend", "world_size", "warmup", "steps")
SHARDED = ("all_gather_into_tensor", "reduce_scatter_tensor", "all_to_all_single")  # count is a multiple of n


def bus_factor(op: str, world_size: int) -> float:
    """nccl-tests' factor from algorithm to bus bandwidth for `op` over `world_size` ranks."""
    n = world_size
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op == "broadcast":
        return 1.0
    if op in SHARDED:
        return (n - 1) / n
    raise ValueError(f"unknown collective {op!r}")


def element_count(op: str, requested_bytes: int, element_size: int, world_size: int) -> int:
    """Elements in the larger buffer (size S / element size): the bytes asked for, in whole elements, rounded down
    to a multiple of the ranks where the collective splits the buffer among them (at least one per rank)."""
    count = max(requested_bytes // element_size, 1)
    if op in SHARDED:
        count = max(count // world_size, 1) * world_size
    return count


def measurement_key(fields: dict[str, Any]) -> str:
    return fields_key({name: fields[name] for name in KEY_FIELDS})


def new_record(fields: dict[str, Any], samples_ms: list[list[float]] | None, environment: dict[str, Any],
               oom: str | None = None) -> CollectiveRecord:
    """The record of one measurement: `fields` holds KEY_FIELDS, `bytes`, `count` and `timestamp`;
    `samples_ms` every rank's timed steps, or None with `oom` saying why the buffers did not fit."""
    data: dict[str, Any] = {"lmbench": SCHEMA, "key": measurement_key(fields), **fields,
                            "status": "ok" if oom is None else "oom", "samples_ms": samples_ms or [],
                            "environment": environment}
    if oom is not None:
        data["oom"] = {"message": oom}
    record = CollectiveRecord(data)
    if record.ok:
        data["summary"] = {"time_ms": record.time_ms, "rank_mean_ms": record.rank_mean_ms,
                           "algbw_gbps": record.algbw_gbps, "busbw_gbps": record.busbw_gbps,
                           "bus_factor": bus_factor(record.op, record.world_size)}
    return record


@dataclass(frozen=True)
class CollectiveRecord(StoredRecord):
    """One stored collective measurement, read through named accessors."""

    @property
    def op(self) -> str:
        return self.data["op"]

    @property
    def requested_bytes(self) -> int:
        return self.data["requested_bytes"]

    @property
    def bytes(self) -> int:
        """Size S as nccl-tests defines it (module docstring), after rounding the count to the ranks."""
        return self.data["bytes"]

    @property
    def count(self) -> int:
        return self.data["count"]

    @property
    def dtype(self) -> str:
        return self.data["dtype"]

    @property
    def world_size(self) -> int:
        return self.data["world_size"]

    @property
    def backend(self) -> str:
        return self.data["backend"]

    @property
    def device_type(self) -> str:
        return self.data["device_type"]

    @property
    def steps(self) -> int:
        return self.data["steps"]

    @property
    def samples_ms(self) -> list[list[float]]:
        """Per rank, every timed step in ms."""
        return self.data["samples_ms"]

    @property
    def rank_means_ms(self) -> list[float]:
        return [statistics.fmean(steps) for steps in self.samples_ms]

    @property
    def time_ms(self) -> float:
        """The collective's time: the slowest rank's mean step."""
        return max(self.rank_means_ms)

    @property
    def rank_mean_ms(self) -> float:
        """The ranks' means averaged (nccl-tests' default report)."""
        return statistics.fmean(self.rank_means_ms)

    @property
    def algbw_gbps(self) -> float:
        return self.bytes / (self.time_ms / 1e3) / 1e9

    @property
    def busbw_gbps(self) -> float:
        return self.algbw_gbps * bus_factor(self.op, self.world_size)


class CollectivesStore(ResultsStore):
    """RUN_DIR/collectives.jsonl, with the results store's locking, appending and torn-line rules."""

    file = COLLECTIVES_FILE
    schema = SCHEMA
    wrap = CollectiveRecord
