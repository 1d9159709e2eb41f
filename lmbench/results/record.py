"""The self-describing record that the results store keeps, and `Record`, the one way to read it.

A record holds the configuration, the resolved model shape, the environment and numerics, every raw
sample, and what is derived from the measured ones: statistics per phase, model FLOPs, achieved
TFLOP/s, MFU and tokens/s. Reports read these fields and never re-measure.

On disk a record is a JSON object (schema SCHEMA, one per line of results.jsonl); in memory it is a `Record`
that wraps that object and names every field, so no code outside results/ spells a key path. Records stored
before a field existed read its default, so older results still load.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from lmbench.config import MODES, PHASES, BenchConfig
from lmbench.errors import LmbenchError
from lmbench.results.flops import peak_tflops, phase_flops
from lmbench.results.stats import between_processes, summarize

SCHEMA = "lmbench.result/1"


CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BenchConfig)}  # what a stored config lacks


@dataclass(frozen=True)
class StoredRecord:
    """What every line of a results store holds, whatever it measured (a step: Record; a collective:
    results/collectives.py): the JSON object as stored (`data`; records are equal when their data are), its key,
    status and environment."""

    data: dict[str, Any]

    @property
    def key(self) -> str:
        """The measured configuration's hash: records of one configuration share it (the latest wins)."""
        return self.data["key"]

    @property
    def status(self) -> str:
        """'ok', or 'oom' when the configuration ran out of memory."""
        return self.data["status"]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def oom_message(self) -> str | None:
        return (self.data.get("oom") or {}).get("message")

    @property
    def oom_phase(self) -> str | None:
        return (self.data.get("oom") or {}).get("phase")

    @property
    def environment(self) -> dict[str, Any]:
        """Device, driver, torch/CUDA versions, host, git commit (and a job's backend), read when it was made."""
        return self.data["environment"]


@dataclass(frozen=True)
class Record(StoredRecord):
    """One stored step measurement, read through named accessors."""

    # -- what was measured ------------------------------------------------------------------------------------
    @property
    def oom_rank(self) -> int | None:
        """In a data-parallel job, the rank that ran out of memory first."""
        return (self.data.get("oom") or {}).get("rank")

    @property
    def timestamp(self) -> str:
        return self.data["timestamp"]

    @functools.cached_property
    def config(self) -> BenchConfig:
        return BenchConfig.from_dict(self.data["config"])

    def config_value(self, field: str) -> Any:
        """A configuration field as stored; a record stored before the field existed reads its default."""
        return self.data["config"].get(field, CONFIG_DEFAULTS[field])

    @property
    def label(self) -> str:
        """The model size's label ('small', or 'tiny(d_model=32)' for a custom shape)."""
        return self.data["model"]["label"]

    @property
    def params(self) -> int | None:
        return self.data["model"].get("params")

    @property
    def phases(self) -> list[str]:
        """The phases the record's mode runs, whether or not it finished."""
        return list(PHASES[: MODES.index(self.config_value("mode")) + 1])

    # -- where and how --------------------------------------------------------------------------------------
    @property
    def device_name(self) -> str:
        return self.environment["device_name"]

    @property
    def on_cuda(self) -> bool:
        return self.environment["device_type"] == "cuda"

    @property
    def numerics(self) -> dict[str, Any]:
        """Precision, TF32, autocast dtype, matmul precision, SDPA backends: read while in force."""
        return self.data.get("numerics", {})

    @property
    def profiler(self) -> str | None:
        """The profiler the record was measured under (torch.profiler, nsys, ...), None for a plain run."""
        return self.data.get("profiler")

    @property
    def sampling(self) -> dict[str, Any] | None:
        """How measuring ended (count, target or max-time) and the CI half-width reached."""
        return self.data.get("sampling")

    @property
    def compile(self) -> dict[str, Any] | None:
        """torch.compile's cost (measure/compile.py): mode, backend, first_step_s, frames, graphs, graph_breaks,
        recompiles_warmup, recompiles_measured; None for an eager run."""
        return self.data.get("compile")

    @property
    def build_s(self) -> float:
        return self.data["build_s"]

    @property
    def wall_s(self) -> float:
        return self.data["wall_s"]

    # -- the samples and what they determine ----------------------------------------------------------------
    @property
    def samples(self) -> list[dict[str, Any]]:
        """Every step, warm-up ones included and labelled (`warmup`), with `<phase>_ms`, `step_ms` and, in a
        merged record, `process`."""
        return self.data["samples"]

    @property
    def measured(self) -> list[dict[str, Any]]:
        return [s for s in self.samples if not s["warmup"]]

    def totals(self, include_warmup: bool = False) -> list[float]:
        """The per-step totals (sum of the phases) of the measured steps, or of every step, in step order."""
        phases = phase_names(self.samples)
        return [sum(s[f"{p}_ms"] for p in phases) for s in self.samples if include_warmup or not s["warmup"]]

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per phase (and 'total', 'step'): the step-level statistics (stats.Summary.as_dict)."""
        return self.data.get("stats", {})

    def mean_ms(self, phase: str = "total") -> float:
        return self.stats[phase]["mean"]

    @property
    def process_stats(self) -> dict[str, dict[str, Any]]:
        """With several processes: per phase, the statistics whose unit is the process (stats.between_processes)."""
        return self.data.get("process_stats") or {}

    @property
    def processes(self) -> list[dict[str, Any]]:
        """With several processes: each one's timestamp, build and wall time, memory and telemetry."""
        return self.data.get("processes") or []

    @property
    def throughput(self) -> dict[str, Any]:
        """Model FLOPs per phase and their source (the formula, or FlopCounterMode for a --model of your own), achieved
    TFLOP/s, the device peak, MFU and tokens/s."""
        return self.data.get("throughput") or {}

    @property
    def memory(self) -> dict[str, Any]:
        return self.data.get("memory") or {}

    @property
    def telemetry(self) -> dict[str, Any]:
        return self.data.get("telemetry") or {}

    @property
    def graph(self) -> dict[str, Any]:
        """The CUDA-graph replay of the same step (--cuda-graph): its samples and statistics, or its error."""
        return self.data.get("graph") or {}

    # -- a data-parallel job (measure/data_parallel.py) ----------------------------------------------------------
    @property
    def distributed(self) -> dict[str, Any]:
        """A torchrun job's backend (and NCCL version), world size, ranks per node, nodes, hosts and `ranks`: each
        rank's host, device and memory peaks; {} for a record measured in one process."""
        return self.data.get("distributed") or {}

    @property
    def world_size(self) -> int:
        """The ranks that measured the record: 1 unless it is a data-parallel job's."""
        return self.distributed.get("world_size", 1)

    @property
    def rank_samples(self) -> list[dict[str, Any]]:
        """A job's every rank's own samples, each with its `rank` ([] for one process); `samples` holds, per step,
        the sample of the slowest rank (results/ranks.py)."""
        return self.data.get("rank_samples") or []


_NUMBER = (int, float)
# Fields a stored record must have, and the types of those it may have (older records lack some of the latter).
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "key": str, "status": str, "timestamp": str, "config": dict, "model": dict, "environment": dict,
    "samples": list, "build_s": _NUMBER, "wall_s": _NUMBER}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "numerics": dict, "profiler": str, "sampling": dict, "memory": dict, "telemetry": dict, "stats": dict,
    "process_stats": dict, "processes": list, "throughput": dict, "graph": dict, "compile": dict, "oom": dict,
    "distributed": dict, "rank_samples": list}
STATUSES = ("ok", "oom")


def read_record(data: dict[str, Any]) -> Record:
    """A record read back from the store, checked first, so that a damaged or foreign line fails here with what is
    wrong (ValueError) instead of as a KeyError deep inside a report."""
    problem = record_problem(data)
    if problem:
        raise ValueError(problem)
    return Record(data)


def record_problem(data: dict[str, Any]) -> str | None:
    """What makes `data` unreadable as a record (a missing or mistyped field, an unknown status, a configuration
    lmbench refuses, a malformed sample), or None."""
    def kind(value: Any, expected: type | tuple[type, ...]) -> bool:
        return isinstance(value, expected) and not isinstance(value, bool)  # JSON true is no number

    for name, expected in _REQUIRED.items():
        if name not in data:
            return f"the record has no {name!r}"
        if not kind(data[name], expected):
            return f"{name!r} is {type(data[name]).__name__}, not {_type_name(expected)}"
    for name, expected in _OPTIONAL.items():
        if data.get(name) is not None and not kind(data[name], expected):
            return f"{name!r} is {type(data[name]).__name__}, not {_type_name(expected)}"
    if data["status"] not in STATUSES:
        return f"status {data['status']!r} is not one of {', '.join(STATUSES)}"
    try:
        BenchConfig.from_dict(data["config"])
    except (LmbenchError, TypeError) as e:
        return f"its configuration is refused: {e}"
    for name in ("device_name", "device_type"):
        if not isinstance(data["environment"].get(name), str):
            return f"'environment' has no {name!r}"
    if not isinstance(data["model"].get("label"), str):
        return "'model' has no 'label'"
    for index, sample in enumerate(data["samples"]):
        problem = _sample_problem(sample)
        if problem:
            return f"sample {index}: {problem}"
    problem = _ranks_problem(data)
    if problem:
        return problem
    if data["status"] == "ok":
        if not any(not s["warmup"] for s in data["samples"]):
            return "an 'ok' record with no measured sample"
        total = (data.get("stats") or {}).get("total")
        if not isinstance(total, dict) or not kind(total.get("mean"), _NUMBER):
            return "an 'ok' record without statistics ('stats' has no total mean)"
    return None


def _ranks_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a job's world size or its ranks' samples, or None (also for one process's record)."""
    world = (data.get("distributed") or {}).get("world_size", 1)
    if not isinstance(world, int) or isinstance(world, bool) or world < 1:
        return f"'distributed' has world_size {world!r}, not a positive integer"
    for index, sample in enumerate(data.get("rank_samples") or []):
        problem = _sample_problem(sample)
        rank = sample.get("rank") if isinstance(sample, dict) else None
        if problem is None and (not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world):
            problem = f"rank {rank!r} is not one of the job's {world} ranks"
        if problem:
            return f"rank sample {index}: {problem}"
    return None


def _sample_problem(sample: Any) -> str | None:
    if not isinstance(sample, dict):
        return f"a {type(sample).__name__}, not an object"
    if not isinstance(sample.get("warmup"), bool):
        return "no 'warmup' flag"
    if "step_ms" not in sample:
        return "no 'step_ms'"
    for name, value in sample.items():
        if name.endswith("_ms") and (not isinstance(value, _NUMBER) or isinstance(value, bool)):
            return f"{name!r} is {value!r}, not a number"
    return None


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def new_record(config: BenchConfig, *, status: str, timestamp: str, params: int | None, environment: dict[str, Any],
               numerics: dict[str, Any], profiler: str | None, sampling: dict[str, Any] | None, build_s: float,
               wall_s: float, samples: list[dict[str, Any]], memory: dict[str, Any], telemetry: dict[str, Any],
               graph: dict[str, Any] | None = None, compile: dict[str, Any] | None = None,
               flops: dict[str, int] | None = None, oom: dict[str, Any] | None = None,
               distributed: dict[str, Any] | None = None, rank_samples: list[dict[str, Any]] | None = None) -> Record:
    """The record of one measured configuration, with what its samples determine derived (derive). A data-parallel
    job's record adds `distributed` (its world size, backend, ranks) and every rank's own samples. `flops` are a
    --model of your own's FLOPs per phase as FlopCounterMode counted them (kept in `model`, the formula's otherwise)."""
    world_size = (distributed or {}).get("world_size", 1)
    data: dict[str, Any] = {
        "lmbench": SCHEMA, "key": config.key(world_size), "status": status, "timestamp": timestamp,
        "config": dataclasses.asdict(config),
        "model": {**dataclasses.asdict(config.model_config()), "label": config.label, "params": params,
                  **({"counted_flops": flops} if flops else {})},
        "environment": environment, "numerics": numerics, "profiler": profiler, "sampling": sampling,
        "build_s": build_s, "wall_s": wall_s, "samples": samples, "memory": memory, "telemetry": telemetry,
    }
    if graph:
        data["graph"] = graph
    if compile:
        data["compile"] = compile
    if distributed:
        data["distributed"] = distributed
    if rank_samples:
        data["rank_samples"] = rank_samples
    if oom:
        data["oom"] = oom
    elif status == "ok":
        derive(data)
    return Record(data)


def phase_names(samples: list[dict]) -> list[str]:
    """Phases present in the samples, in step order ('total' is their per-step sum)."""
    return [k[: -len("_ms")] for k in samples[0] if k.endswith("_ms") and k != "step_ms"] if samples else []


def process_of(sample: dict[str, Any]) -> int:
    """The process a sample was measured in: 0 unless the record merges several (measure/processes.py)."""
    return sample.get("process", 0)


def process_indices(samples: list[dict[str, Any]]) -> list[int]:
    """The processes that measured these samples, in order: [0] unless a record merges several."""
    return sorted({process_of(s) for s in samples})


def derive(record: dict[str, Any]) -> None:
    """Fill in what the measured samples determine: statistics per phase with the step as unit, with
    several processes also the statistics whose unit is the process, and throughput (FLOPs, TFLOP/s, MFU). In a
    data-parallel job FLOPs, TFLOP/s and MFU are each rank's (one GPU's), tokens/s the whole job's."""
    measured = [s for s in record["samples"] if not s["warmup"]]
    phases = phase_names(measured)

    def series(sample_set: list[dict]) -> dict[str, list[float]]:
        out = {p: [s[f"{p}_ms"] for s in sample_set] for p in phases}
        out["total"] = [sum(s[f"{p}_ms"] for p in phases) for s in sample_set]
        out["step"] = [s["step_ms"] for s in sample_set]
        return out

    record["stats"] = {name: summarize(values).as_dict() for name, values in series(measured).items()}
    processes = process_indices(measured)
    if len(processes) > 1:
        per_process = [series([s for s in measured if process_of(s) == k]) for k in processes]
        record["process_stats"] = {name: between_processes([p[name] for p in per_process])
                                   for name in per_process[0]}

    config = BenchConfig.from_dict(record["config"])
    stats, env = record["stats"], record["environment"]
    counted = record["model"].get("counted_flops")
    flops = dict(counted) if counted else phase_flops(config.model_config(), config.batch, config.ctx, config.mode)
    flops["total"] = sum(flops.values())
    peak = peak_tflops(env["device_name"], config.precision, config.tf32) if env["device_type"] == "cuda" else None
    achieved = {p: f / (stats[p]["mean"] * 1e-3) / 1e12 for p, f in flops.items() if f and p in stats}
    record["throughput"] = {
        "tokens_per_s": Record(record).world_size * config.batch * config.ctx / (stats["total"]["mean"] * 1e-3),
        "flops": flops,
        "flops_source": "FlopCounterMode" if counted else "formula",
        "tflops": achieved,
        "peak_tflops": peak,
        "mfu": {p: v / peak for p, v in achieved.items()} if peak else {},
    }
