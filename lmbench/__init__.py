"""lmbench: benchmark and profile Transformer LM steps, and explain the numbers.

The curated API (`__all__`); see lmbench/api.py for an example. Names load on first use, so `import lmbench`
and `lmbench --help` stay fast: torch is imported only by what measures.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_HOMES = {
    "BenchConfig": "lmbench.config", "ModelConfig": "lmbench.config", "SIZES": "lmbench.config",
    "Sampling": "lmbench.measure.sampling", "LmbenchError": "lmbench.errors",
    "CollectivesOptions": "lmbench.measure.collectives_options", "LaunchOptions": "lmbench.measure.launch",
    "collectives": "lmbench.api",
    "AttentionOptions": "lmbench.measure.attention_options", "attention": "lmbench.api",
    "ProfileOptions": "lmbench.config", "NcuOptions": "lmbench.profilers.ncu_options",
    **{name: "lmbench.api" for name in ("bench", "sweep", "load_results", "load_samples", "report", "report_json",
                                        "compare", "kernel_report", "profile", "nsys", "ncu")},
}
__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lmbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
