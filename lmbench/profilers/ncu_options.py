"""What `lmbench ncu` profiles: the phase, how many launches of each kernel, which ncu sections. Torch- and
pandas-free, so the command line builds its options without loading them; the fields are the options of the CLI
(cli_options.config_options) and of profilers/ncu.py."""

from __future__ import annotations

from dataclasses import dataclass

from lmbench.config import MODES, PHASES, BenchConfig
from lmbench.errors import LmbenchError
from lmbench.options import check_types, option, require_choice, require_positive

NCU_ENV = "LMBENCH_NCU"  # where `lmbench ncu` looks for the executable before PATH
# The sections behind the kernel table (kernels/ncu_csv.py): Speed of Light throughputs, achieved occupancy, the
# FP32/FP64 roofline and the tensor-core roofline. `detailed` adds what the H200 fixture was captured with.
SECTIONS = {
    "roofline": ("SpeedOfLight", "Occupancy", "SpeedOfLight_RooflineChart",
                 "SpeedOfLight_HierarchicalTensorRooflineChart"),
    "detailed": ("SpeedOfLight", "Occupancy", "SpeedOfLight_RooflineChart",
                 "SpeedOfLight_HierarchicalTensorRooflineChart", "LaunchStats", "ComputeWorkloadAnalysis",
                 "MemoryWorkloadAnalysis"),
}


@dataclass(frozen=True)
class NcuOptions:
    """One Nsight Compute capture of measured step 0. Every profiled launch is replayed once per metric pass, and
    ncu saves and restores the process's GPU memory around the replays, so the cost grows with the launches
    profiled, the sections and the model's memory."""

    phase: str = option("forward", "the phase of measured step 0 whose kernels are profiled", choices=PHASES)
    kernels: int = option(1, "launches profiled of each launch configuration (kernel, grid, block) of the phase "
                             "(ncu --filter-mode per-launch-config --launch-count N); 1 profiles every distinct "
                             "kernel once, as the layers repeat the same launches")
    sections: str = option("roofline", "ncu sections: roofline (SpeedOfLight, Occupancy and both roofline charts, "
                                       "what the table needs) or detailed (adds LaunchStats, ComputeWorkloadAnalysis, "
                                       "MemoryWorkloadAnalysis; slower)", choices=tuple(SECTIONS))

    def __post_init__(self) -> None:
        check_types(self)
        require_choice("phase", self.phase, PHASES)
        require_positive("kernels", self.kernels)
        require_choice("sections", self.sections, tuple(SECTIONS))

    def check(self, config: BenchConfig) -> None:
        """Refuse a phase the configuration's mode does not run, and a run without the ranges ncu filters on."""
        if config.annotate == "off":
            raise LmbenchError("lmbench ncu filters kernels by lmbench's NVTX ranges: use --annotate phases or detail")
        runs = PHASES[: MODES.index(config.mode) + 1]
        if self.phase not in runs:
            raise LmbenchError(f"--mode {config.mode} runs no {self.phase} phase (it runs {', '.join(runs)})")
