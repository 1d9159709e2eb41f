"""Typed, self-validating configuration.

Every user-facing option is declared exactly once, as a dataclass field whose metadata carries the help
text. The CLI (cli.py) turns these fields into command-line options and the Python API takes the
same dataclasses, so an option cannot drift between the two.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from lmbench.errors import LmbenchError
from lmbench.options import check_types, cli_flag, fields_key, option, require_choice, require_positive

# name: (d_model, d_ff, n_layers, n_heads). "tiny" exists for tests and smoke runs.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (64, 256, 2, 4),
    "small": (768, 3072, 12, 12),
    "medium": (1024, 4096, 24, 16),
    "large": (1280, 5120, 36, 20),
    "xl": (1600, 6400, 48, 25),
    "2.7B": (2560, 10240, 32, 32),
    "10B": (4608, 12288, 50, 36),
}
MODES = ("forward", "forward-backward", "train-step")
PRECISIONS = ("fp32", "bf16", "fp16")
PARAM_DTYPES = ("fp32", "bf16")  # what the parameters are stored in; bf16 only under bf16 autocast
ATTENTIONS = ("sdpa", "naive")
DEVICES = ("auto", "cpu", "cuda")
ANNOTATE_LEVELS = ("off", "phases", "detail")  # range levels of measure/ranges.py
COMPILE_MODES = ("off", "default", "max-autotune", "reduce-overhead")  # torch.compile's modes (measure/compile.py)
GRAPH_COMPILE_MODES = ("max-autotune", "reduce-overhead")  # the modes whose steps replay CUDA graph trees
OPTIMIZERS = ("adamw", "adamw-foreach", "adamw-fused")  # AdamW's for-loop, multi-tensor and fused implementations
DEFAULT_OPTIMIZER = "adamw-foreach"  # what torch picks on CUDA
SDPA_BACKENDS = ("auto", "flash", "efficient", "cudnn", "math")  # torch.nn.attention.sdpa_kernel's, or torch's pick
PARALLELS = ("none", "ddp", "fsdp")  # data parallelism over the ranks of a torchrun job (measure/data_parallel.py)
DEFAULT_BATCH = 4  # BenchConfig.batch's default: beside a global batch it stands for "not given"
DEFAULT_BUCKET_MB = 25  # DistributedDataParallel's bucket_cap_mb default
# BenchConfig fields added after records were first stored: its key counts them only away from their defaults.
LATER_FIELDS = ("parallel", "global_batch", "bucket_cap_mb", "reshard_after_forward", "compile", "optimizer",
                "sdpa_backend", "model", "param_dtype")
# --model MODULE:FACTORY (measure/model_factory.py): dotted names, the factory an attribute path in the module.
MODEL_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

# Names written once: the harness and the model emit them (measure/ranges.py), the capture readers match
# them (kernels/), the tables order by them.
PHASES = ("forward", "backward", "optimizer")  # a step's phases, in the order they run
RANGE_DOMAIN = "lmbench"  # the NVTX domain of every range lmbench emits
STEP_RANGES = ("warmup", "measured")  # each step's range is "<kind>_<index>"
MEMORY_RANGE = "memory"  # the extra step that reads the memory peaks
GRAPH_RANGE = "step"  # a step replayed as one CUDA graph
COMPILE_RANGE = "compile"  # the untimed first step of a compiled model, where torch.compile compiles it
LAYER_RANGE = "layer"  # "layer_<index>", at the "detail" level, with the model parts inside
MODEL_RANGES = ("attention", "ffn", "scores", "softmax", "value")  # model parts, at the "detail" level
ATTENTION_RANGE, FFN_RANGE, SCORES_RANGE, SOFTMAX_RANGE, VALUE_RANGE = MODEL_RANGES
NSYS_ENV = "LMBENCH_NSYS"  # where `lmbench nsys` looks for the executable before PATH
WARMUP_COUNTS = (0, 1, 2, 5)  # the warm-up study's default counts

RANGE_NAMES = (*STEP_RANGES, MEMORY_RANGE, GRAPH_RANGE, COMPILE_RANGE, *PHASES, LAYER_RANGE, *MODEL_RANGES)


def indexed_range(kind: str, index: int) -> str:
    """'measured_3', 'layer_0': the name of an indexed range."""
    return f"{kind}_{index}"


MAX_STEPS = 10**7  # every step's samples are kept in memory and in the record


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the Transformer LM; validated on construction."""

    d_model: int
    d_ff: int
    n_layers: int
    n_heads: int
    vocab_size: int = 10_000
    context_length: int = 512
    attention: str = "sdpa"
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("d_model", "d_ff", "n_layers", "n_heads", "vocab_size", "context_length"):
            require_positive(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise LmbenchError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.head_dim % 2:
            raise LmbenchError(
                f"head dimension {self.head_dim} (d_model {self.d_model} / n_heads {self.n_heads}) is odd; "
                "RoPE needs an even head dimension"
            )
        require_choice("attention", self.attention, ATTENTIONS)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark configuration: which model, which input shape, which step, how measured."""

    size: str = option("small", "named model size", sweep=True, choices=tuple(SIZES))
    model: str | None = option(None, "your own model, MODULE:FACTORY: factory(ModelConfig) returns an nn.Module mapping "
                               "(B, T) token ids to (B, T, vocab) logits; --size and the overrides shape the ModelConfig "
                               "it gets; MODULE is imported from the current directory or PYTHONPATH")
    d_model: int | None = option(None, "override the size's d_model")
    d_ff: int | None = option(None, "override the size's d_ff")
    n_layers: int | None = option(None, "override the size's number of layers")
    n_heads: int | None = option(None, "override the size's number of heads")
    vocab_size: int = option(10_000, "vocabulary size")
    batch: int = option(DEFAULT_BATCH, "batch size (per rank in a data-parallel job)", sweep=True)
    ctx: int = option(128, "context length (tokens per sequence)", sweep=True)
    mode: str = option("forward-backward", "what one step does", sweep=True, choices=MODES)
    precision: str = option("fp32", "fp32, or bf16/fp16 autocast", sweep=True, choices=PRECISIONS)
    param_dtype: str = option("fp32", "what the parameters, and so their gradients and AdamW's moments, are stored in: "
                              "fp32 (mixed precision: autocast casts them every step) or bf16 (with --precision bf16, "
                              "in one process: no casts, no fp32 copy)", sweep=True, choices=PARAM_DTYPES)
    tf32: bool = option(False, "let fp32 matmuls use TF32 tensor cores (CUDA only)")
    attention: str = option("sdpa", "attention implementation", sweep=True, choices=ATTENTIONS)
    sdpa_backend: str = option("auto", "the kernel behind sdpa attention (torch.nn.attention.sdpa_kernel); auto lets "
                               "torch pick", sweep=True, choices=SDPA_BACKENDS)
    compile: str = option("off", "torch.compile the model with this mode; its first step is timed apart from the "
                          "others", sweep=True, choices=COMPILE_MODES)
    optimizer: str = option(DEFAULT_OPTIMIZER, "train-step: AdamW for-loop (adamw), multi-tensor (adamw-foreach, what "
                            "torch picks on CUDA) or fused (adamw-fused)", sweep=True, choices=OPTIMIZERS)
    warmup: int = option(5, "warm-up steps (recorded, excluded from statistics)")
    steps: int = option(10, "measured steps")
    device: str = option("auto", "where to run; auto picks cuda when present", choices=DEVICES)
    seed: int = option(0, "seed for weights and input tokens")
    annotate: str = option("off", "NVTX + record_function ranges: phases (steps, forward, backward, optimizer); "
                           "detail adds layer_k, attention, ffn, and scores/softmax/value in naive attention",
                           choices=ANNOTATE_LEVELS)
    cuda_graph: bool = option(False, "also capture the whole step in a CUDA graph and time its replays beside the "
                              "eager steps (CUDA only)")
    emit_nvtx: bool = option(False, "also an NVTX range per autograd op (torch.autograd.profiler.emit_nvtx; "
                             "CUDA only, slows the host)")
    parallel: str = option("none", "data parallelism over the ranks of a torchrun job (--nproc-per-node, --nnodes): "
                           "ddp (DistributedDataParallel) or fsdp (FSDP2 fully_shard per block, then the model); "
                           "none runs in this process", sweep=True, choices=PARALLELS)
    global_batch: int | None = option(None, "batch of the whole job, divided across its ranks (strong scaling); "
                                            "--batch is per rank (weak scaling); give one of the two")
    bucket_cap_mb: int = option(DEFAULT_BUCKET_MB, "ddp: gradient bucket size in MiB (torch's default)", sweep=True)
    reshard_after_forward: bool = option(True, "fsdp: free the gathered parameters after forward and gather them "
                                               "again for backward (fully_shard's default)")

    def __post_init__(self) -> None:
        check_types(self)
        require_choice("size", self.size, tuple(SIZES))
        if self.model is not None and not MODEL_SPEC.fullmatch(self.model):
            raise LmbenchError(f"--model {self.model!r} is not MODULE:FACTORY (e.g. mymodel:build)")
        require_choice("mode", self.mode, MODES)
        require_choice("precision", self.precision, PRECISIONS)
        require_choice("param_dtype", self.param_dtype, PARAM_DTYPES)
        if self.param_dtype != "fp32" and self.precision != self.param_dtype:
            raise LmbenchError(f"--param-dtype {self.param_dtype} needs --precision {self.param_dtype}, "
                               f"not {self.precision}")
        require_choice("device", self.device, DEVICES)
        require_choice("annotate", self.annotate, ANNOTATE_LEVELS)
        for name in ("batch", "ctx", "steps", "vocab_size"):
            require_positive(name, getattr(self, name))
        if self.warmup < 0:
            raise LmbenchError(f"warmup must be zero or more, got {self.warmup}")
        for name in ("steps", "warmup"):
            if getattr(self, name) > MAX_STEPS:
                raise LmbenchError(f"{name} must be at most {MAX_STEPS:,}, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**64:  # torch.manual_seed's range
            raise LmbenchError(f"seed must be between 0 and 2**64 - 1, got {self.seed}")
        if self.cuda_graph and self.precision == "fp16":
            raise LmbenchError("--cuda-graph does not support fp16: its GradScaler checks for overflow on the host")
        if self.tf32 and self.precision != "fp32":
            raise LmbenchError(f"--tf32 only applies to fp32, not {self.precision}")
        self._check_parallel()
        self._check_kernels()
        self.model_config()  # validates the resolved model shape

    def _check_parallel(self) -> None:
        require_choice("parallel", self.parallel, PARALLELS)
        for name in ("bucket_cap_mb", *(("global_batch",) if self.global_batch is not None else ())):
            require_positive(name, getattr(self, name))
        if self.bucket_cap_mb != DEFAULT_BUCKET_MB and self.parallel != "ddp":
            raise LmbenchError(f"--bucket-cap-mb applies to --parallel ddp, not {self.parallel}")
        if not self.reshard_after_forward and self.parallel != "fsdp":
            raise LmbenchError(f"--no-reshard-after-forward applies to --parallel fsdp, not {self.parallel}")
        if self.parallel != "none" and self.cuda_graph:
            raise LmbenchError(f"--cuda-graph captures one process's step, not one of --parallel {self.parallel}")
        if self.parallel != "none" and self.param_dtype != "fp32":
            raise LmbenchError(f"--param-dtype {self.param_dtype} runs in one process: --parallel {self.parallel} "
                               "keeps fp32 parameters")
        if self.parallel == "fsdp" and self.precision == "fp16":
            raise LmbenchError("--parallel fsdp runs fp32 or bf16: lmbench has no loss scaling for sharded fp16 gradients")

    def _check_kernels(self) -> None:
        require_choice("sdpa_backend", self.sdpa_backend, SDPA_BACKENDS)
        require_choice("compile", self.compile, COMPILE_MODES)
        require_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.sdpa_backend != "auto" and self.attention != "sdpa":
            raise LmbenchError(f"--sdpa-backend {self.sdpa_backend} picks a kernel for --attention sdpa, not "
                               f"{self.attention}")
        if self.optimizer != DEFAULT_OPTIMIZER and self.mode != "train-step":
            raise LmbenchError(f"--optimizer {self.optimizer} applies to --mode train-step, not {self.mode}")
        if self.compile == "reduce-overhead" and self.cuda_graph:
            raise LmbenchError("--compile reduce-overhead already replays CUDA graphs; --cuda-graph would capture them "
                               "again: use one of the two")
        if self.compile != "off" and self.annotate == "detail":
            raise LmbenchError(f"--compile {self.compile} with --annotate detail: ranges inside the model break "
                               "torch.compile's graph into pieces; use --annotate phases (or off)")

    def for_ranks(self, world_size: int) -> BenchConfig:
        """This configuration as each of `world_size` ranks runs it: with a global batch, the per-rank batch it
        divides into (an error when it does not divide, or when a different per-rank batch was also given)."""
        if self.global_batch is None:
            return self
        per_rank, left = divmod(self.global_batch, world_size)
        ranks = f"{world_size} rank{'s' if world_size > 1 else ''}"
        if left or not per_rank:
            raise LmbenchError(f"--global-batch {self.global_batch} does not divide evenly across {ranks}")
        if self.batch not in (per_rank, DEFAULT_BATCH):
            raise LmbenchError(f"--batch {self.batch} is per rank and --global-batch {self.global_batch} on {ranks} "
                               f"makes it {per_rank}: give one of the two")
        return dataclasses.replace(self, batch=per_rank)

    def model_config(self) -> ModelConfig:
        d_model, d_ff, n_layers, n_heads = SIZES[self.size]
        pick = lambda override, default: default if override is None else override  # noqa: E731
        return ModelConfig(
            d_model=pick(self.d_model, d_model),
            d_ff=pick(self.d_ff, d_ff),
            n_layers=pick(self.n_layers, n_layers),
            n_heads=pick(self.n_heads, n_heads),
            vocab_size=self.vocab_size,
            context_length=self.ctx,
            attention=self.attention,
        )

    @property
    def label(self) -> str:
        """Row label in reports: the size name, marked when a dimension was overridden ('tiny(d_model=32)'); a custom
        model's spec with the size it was given ('mymodel:build(tiny)')."""
        overridden = [f"{n}={getattr(self, n)}" for n in ("d_model", "d_ff", "n_layers", "n_heads")
                      if getattr(self, n) is not None]
        if self.model is not None:
            return f"{self.model}({','.join([self.size, *overridden])})"
        return f"{self.size}({','.join(overridden)})" if overridden else self.size

    def key(self, world_size: int = 1) -> str:
        """Stable identity of what is measured on `world_size` ranks; `--resume` skips configurations whose key is
        stored. Fields added after records were first stored count only away from their defaults, so an older
        record's key is what its configuration gives today; with a global batch the per-rank batch it divides
        into does not count (it follows from the global batch and the ranks)."""
        fields = {name: value for name, value in dataclasses.asdict(self).items()
                  if name not in LATER_FIELDS or value != self.__dataclass_fields__[name].default}
        if self.global_batch is not None:
            del fields["batch"]
        if world_size > 1:
            fields["world_size"] = world_size
        return fields_key(fields)

    def to_args(self) -> list[str]:
        """The command-line arguments that rebuild this configuration (fields left at their defaults
        are omitted), e.g. for a child `lmbench bench` run under a profiler."""
        args: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if isinstance(value, bool):
                args.append(cli_flag(f.name) if value else "--no-" + cli_flag(f.name)[2:])
            else:
                args += [cli_flag(f.name), str(value)]
        return args

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ProfileOptions:
    """How torch.profiler runs. A schedule field left unset follows the bench step counts."""

    schedule_wait: int | None = option(None, "profiler schedule: steps skipped first (default: warm-up steps - 1)")
    schedule_warmup: int | None = option(None, "profiler schedule: profiler warm-up steps, traced but discarded "
                                               "(default: 1 when there is a bench warm-up step)")
    schedule_active: int | None = option(None, "profiler schedule: steps traced per cycle (default: the measured steps)")
    schedule_repeat: int = option(1, "profiler schedule: cycles, each written as one trace file")
    record_shapes: bool = option(False, "record operator input shapes")
    profile_memory: bool = option(False, "track tensor memory; also writes the HTML memory timeline")
    with_stack: bool = option(False, "record Python stacks (larger traces)")
    with_flops: bool = option(False, "estimate FLOPs of matmul and convolution operators")
    memory_snapshot: bool = option(False, "dump the CUDA allocator history of the measured steps (CUDA only)")

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("schedule_wait", "schedule_warmup"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise LmbenchError(f"{name} must be zero or more, got {value}")
        for name in ("schedule_active", "schedule_repeat"):
            if getattr(self, name) is not None:
                require_positive(name, getattr(self, name))

    def schedule(self, config: BenchConfig) -> tuple[int, int, int, int]:
        """(wait, warmup, active, repeat), checked against the steps the configuration runs."""
        warmup = self.schedule_warmup if self.schedule_warmup is not None else min(config.warmup, 1)
        wait = self.schedule_wait if self.schedule_wait is not None else max(config.warmup - warmup, 0)
        active = self.schedule_active if self.schedule_active is not None else config.steps
        needed, available = wait + (warmup + active) * self.schedule_repeat, config.warmup + config.steps
        if needed > available:
            raise LmbenchError(f"the profiler schedule needs {needed} steps (wait {wait} + (warmup {warmup} + active "
                               f"{active}) x repeat {self.schedule_repeat}) but the run has {available}")
        return wait, warmup, active, self.schedule_repeat


def size_text(size: int) -> str:
    """1024 -> '1 KiB', 3 * 2**29 -> '1.5 GiB', 1000 -> '1000 B': the largest unit that leaves at least one."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            whole, rest = divmod(size, factor)
            if not rest:
                return f"{whole} {unit}"
            if whole >= 10**15:  # integer arithmetic: far enough out (--batch 9...9) a float overflows
                return f"~1e{len(str(whole)) - 1} {unit}"
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"
