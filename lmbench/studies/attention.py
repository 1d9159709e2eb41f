"""`lmbench attention`: the attention micro-benchmark grid, measured in this process, stored and reported.

Checks the device and the torch.compile backend, holds the run directory, measures the grid cell by cell
(measure/attention.py: each record stored as it is measured, --resume skips stored cells) and renders attention.md
from the stored records (render/attention.py). Ctrl-C keeps every stored cell and says how to go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from lmbench.errors import Interrupted, report_of_stored
from lmbench.measure.attention import measure_grid
from lmbench.measure.attention_impls import check_compile_backend
from lmbench.measure.attention_options import AttentionOptions
from lmbench.measure.environment import resolve_device
from lmbench.render.attention import write_report
from lmbench.results.attention import COMPILED, AttentionStore


def run_attention(options: AttentionOptions, run_dir: str | Path, resume: bool = False,
                  on_line: Callable[[str], None] = lambda line: None) -> Path:
    """Measure the grid of `options` into `run_dir` and write its report; returns the path of attention.md.
    Progress lines (one per cell) go to `on_line`."""
    device = resolve_device(options.device)
    if COMPILED in options.impls():
        check_compile_backend(options.compile_backend)
    store = AttentionStore(run_dir)
    with store.claim():
        impls, dims, lengths = options.impls(), options.head_dims(), options.seq_lens()
        on_line(f"{len(impls)} implementations x {len(dims)} head dims x {len(lengths)} lengths on {device.type}, "
                f"{options.precision}, batch {options.batch}, {options.heads} head(s), "
                f"{'causal' if options.causal else 'full'}: {options.warmup} warm-up + {options.passes} timed passes")
        try:
            measure_grid(options, device, store, resume, on_line)
        except KeyboardInterrupt:
            kept = len(store.records()) if store.path.exists() else 0
            raise Interrupted(f"interrupted; {kept} cells kept in {store.path}; continue with --resume --run-dir "
                              f"{store.run_dir}") from None
        with report_of_stored(store.path):
            return write_report(store.run_dir)
