"""What `lmbench collectives` measures: which collectives, at which message sizes, in which number format. Torch-free,
so the command line builds its options without loading torch; the fields are the options of the CLI
(cli_options.config_options) and of the Python API (lmbench.api.collectives)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmbench.config import DEVICES
from lmbench.errors import LmbenchError
from lmbench.options import check_types, option, require_choice, require_positive
from lmbench.results.collectives import COLLECTIVE_OPS

COLLECTIVE_DTYPES = ("fp32", "bf16", "fp16")
SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}  # binary, as nccl-tests reads -b/-e
# On the CPU gloo moves about a GB/s, and 4 GiB buffers per rank strain host memory: stop lower by default.
DEFAULT_COLLECTIVE_SIZES = {"cuda": "1K-4G", "cpu": "1K-256M"}


@dataclass(frozen=True)
class CollectivesOptions:
    """What `lmbench collectives` measures: which collectives, at which message sizes, in which number format,
    with how many untimed and timed iterations (nccl-tests' defaults: 5 and 20)."""

    ops: str = option(",".join(COLLECTIVE_OPS), "collectives to measure, comma-separated", choices=COLLECTIVE_OPS)
    sizes: str | None = option(None, "message sizes in bytes, K/M/G = 2^10/2^20/2^30: a list (1K,1M,256M), a "
                                     "range doubling (1K-4G) or a range stepping xF (1K-4G:4); default "
                                     f"{DEFAULT_COLLECTIVE_SIZES['cuda']} on CUDA, {DEFAULT_COLLECTIVE_SIZES['cpu']} "
                                     "on the CPU (gloo there moves about a GB/s through host memory)")
    dtype: str = option("fp32", "element type of the buffers", choices=COLLECTIVE_DTYPES)
    warmup: int = option(5, "untimed iterations per collective and size")
    steps: int = option(20, "timed iterations per collective and size")
    device: str = option("auto", "where the buffers live; auto picks cuda when present", choices=DEVICES)

    def __post_init__(self) -> None:
        check_types(self)
        self.op_list()
        if self.sizes is not None:
            parse_sizes(self.sizes)
        require_choice("dtype", self.dtype, COLLECTIVE_DTYPES)
        require_choice("device", self.device, DEVICES)
        require_positive("steps", self.steps)
        if self.warmup < 0:
            raise LmbenchError(f"warmup must be zero or more untimed iterations, got {self.warmup}")

    def op_list(self) -> tuple[str, ...]:
        ops = tuple(dict.fromkeys(op.strip() for op in self.ops.split(",")))
        for op in ops:
            if not op:
                raise LmbenchError(f"--ops has an empty item in {self.ops!r}")
            require_choice("collective", op, COLLECTIVE_OPS)
        return ops

    def size_list(self, device_type: str) -> tuple[int, ...]:
        """The sizes in bytes, ascending; unset, the default range of the device type ('cuda' or 'cpu')."""
        return parse_sizes(self.sizes if self.sizes is not None else DEFAULT_COLLECTIVE_SIZES[device_type])


def parse_size(text: str) -> int:
    """'4G' -> 4 * 2**30; a plain number is bytes; 'KiB', 'MB' and friends read as binary units too."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:I?B)?\s*", text.upper())
    if not match or int(match.group(1)) <= 0:
        raise LmbenchError(f"size {text!r} is not a positive number of bytes like 1024, 1K, 256M or 4G")
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


def parse_sizes(text: str) -> tuple[int, ...]:
    """A comma list of sizes and ranges (START-END doubling, START-END:F stepping xF), ascending, each once."""
    sizes: set[int] = set()
    for item in text.split(","):
        span, _, factor_text = item.partition(":")
        if "-" not in span:
            if factor_text:
                raise LmbenchError(f"size {item!r}: a step :F needs a range START-END before it")
            sizes.add(parse_size(span))
            continue
        start, end = (parse_size(part) for part in span.split("-", 1))
        if factor_text and not factor_text.isdigit():
            raise LmbenchError(f"size range {item!r}: the step after ':' must be a whole factor like 2 or 4")
        factor = int(factor_text) if factor_text else 2
        if factor < 2 or start > end:
            raise LmbenchError(f"size range {item!r} must run from small to large with a factor of 2 or more")
        while start <= end:
            sizes.add(start)
            start *= factor
    return tuple(sorted(sizes))
