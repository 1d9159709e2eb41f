"""What `lmbench attention` measures: the grid (implementations x head dimensions x sequence lengths) and how each
cell runs. Torch-free, so the command line builds its options without loading torch; the fields are the options of
the CLI (cli_options.config_options) and of the Python API (lmbench.api.attention)."""

from __future__ import annotations

from dataclasses import dataclass

from lmbench.config import DEVICES, PRECISIONS
from lmbench.errors import LmbenchError
from lmbench.options import check_types, cli_flag, option, require_choice, require_positive
from lmbench.results.attention import IMPLS


@dataclass(frozen=True)
class AttentionOptions:
    """One grid of attention cells. The defaults are the classic assignment's: batch 8, one head, fp32, head
    dimensions 16-128 and sequence lengths 256-16384, 100 timed passes each way."""

    impl: str = option(",".join(IMPLS), "implementations, comma-separated: naive (model.py's naive_attention), "
                                        "sdpa-<backend> (scaled_dot_product_attention under sdpa_kernel; auto lets "
                                        "torch pick), naive-compiled (torch.compile of naive)", choices=IMPLS)
    head_dim: str = option("16,32,64,128", "head dimensions, comma-separated")
    seq_len: str = option("256,1024,4096,8192,16384", "sequence lengths, comma-separated")
    batch: int = option(8, "batch size")
    heads: int = option(1, "attention heads")
    passes: int = option(100, "timed forward passes, and then timed backward passes, per cell")
    warmup: int = option(5, "untimed forward + backward passes per cell after the first call")
    precision: str = option("fp32", "dtype of q, k and v (no autocast)", choices=PRECISIONS)
    causal: bool = option(True, "causal masking, as in a decoder (--no-causal: every query sees every key)")
    compile_backend: str = option("inductor", "torch.compile backend of naive-compiled (eager and aot_eager trace "
                                              "without generating kernels: quick checks)")
    device: str = option("auto", "where the cells run; auto picks cuda when present", choices=DEVICES)

    def __post_init__(self) -> None:
        check_types(self)
        self.impls(), self.head_dims(), self.seq_lens()
        for name in ("batch", "heads", "passes"):
            require_positive(name, getattr(self, name))
        if self.warmup < 0:
            raise LmbenchError(f"warmup must be zero or more untimed passes, got {self.warmup}")
        require_choice("precision", self.precision, PRECISIONS)
        require_choice("device", self.device, DEVICES)
        if not self.compile_backend.strip():
            raise LmbenchError("--compile-backend is empty; give a torch.compile backend such as inductor")

    def impls(self) -> tuple[str, ...]:
        """The implementations in IMPLS order (naive first: the others' speedups are against it)."""
        listed = _items("impl", self.impl)
        for impl in listed:
            require_choice("implementation", impl, IMPLS)
        return tuple(impl for impl in IMPLS if impl in listed)

    def head_dims(self) -> tuple[int, ...]:
        return _positive_ints("head_dim", self.head_dim)

    def seq_lens(self) -> tuple[int, ...]:
        return _positive_ints("seq_len", self.seq_len)


def _items(name: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise LmbenchError(f"{cli_flag(name)} has an empty item in {text!r}")
    return items


def _positive_ints(name: str, text: str) -> tuple[int, ...]:
    """A comma list of positive integers, ascending, each once."""
    values = set()
    for item in _items(name, text):
        if not item.isdigit() or int(item) == 0:
            raise LmbenchError(f"{cli_flag(name)}: {item!r} is not a positive integer")
        values.add(int(item))
    return tuple(sorted(values))
