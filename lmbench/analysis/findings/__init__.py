"""Findings computed from one group of records: each a claim with the numbers and the basis behind it.

Nothing here is canned prose: every sentence is assembled from measured values, and a finding whose
data is missing (too few sizes, no MFU peak for the device) says so instead of guessing. Each finding is as
strong as its measurement: fits below GOOD_FIT_R2 are not read (fits.py), faster/slower comes from
compare's one decision rule, and what weakens a whole group comes first as a caveat (caveats.py).
"""

from __future__ import annotations

from lmbench.analysis.findings import scaling as scaling_findings
from lmbench.analysis.findings import compile as compile_findings
from lmbench.analysis.findings import steps, timing, variance, variants
from lmbench.analysis.findings.ranks import straggler_findings, weak_scaling
from lmbench.analysis.findings.caveats import caveats
from lmbench.analysis.findings.finding import Finding
from lmbench.analysis.findings.memory import memory_findings
from lmbench.analysis.findings.overhead import host_overhead
from lmbench.analysis.groups import describe, varying
from lmbench.results.record import Record


def findings(records: list[Record]) -> list[Finding]:
    """All findings for one group (records of one mode/precision/shape, one per size), caveats first."""
    ok = [r for r in records if r.ok]
    computed = (timing.flops_scaling(ok), scaling_findings.parameters(ok), scaling_findings.deviations(ok),
                timing.throughput(ok), scaling_findings.efficiency(ok), timing.noise(ok), variance.cv_ranking(ok), variance.outlier_steps(ok),
                variance.between_processes(ok), steps.steady_state(ok), variance.machine(ok), timing.backward_ratio(ok),
                steps.first_step(ok), compile_findings.compile_cost(ok), compile_findings.recompiles(ok))
    return (caveats(records) + [f for f in computed if f] + straggler_findings(ok) + host_overhead(ok)
            + timing.out_of_memory(records) + memory_findings(records))


def run_findings(records: list[Record]) -> list[Finding]:
    """Findings that compare groups of one run: variants against their baseline, growth with context length, jobs
    of several ranks against one GPU;
    with the caveats of the run's records (named by what varies in the run) when there is any such finding."""
    computed = [variants.variant_speedups(records, field) for field in variants.VARIANTS]
    found = [f for f in (*computed, scaling_findings.context_scaling(records), weak_scaling(records)) if f]
    named_by = varying(records)
    return caveats(records, lambda r: describe(r, named_by)) + found if found else []
