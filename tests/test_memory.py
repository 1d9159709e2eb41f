"""The peak-memory table: analytic tensor sizes by hand, beside the measured peak of real tiny runs."""

from __future__ import annotations

import pytest

from helpers import tiny
from lmbench.analysis.memory import MB, analytic_sizes_mb, memory_table, peak_mb
from lmbench.analysis.report_tables import memory_stats
from lmbench.render.timing_report import memory_display
from lmbench.results.store import ResultsStore
from lmbench.studies.sweep import run_sweep


def test_analytic_sizes_by_hand() -> None:
    # tiny: d_model 64, 4 heads; batch 2, ctx 16, vocab 256; 1000 parameters for round numbers.
    train = analytic_sizes_mb(tiny(mode="train-step", precision="bf16"), params=1000)
    assert train["params_mb"] == pytest.approx(4000 / MB)
    assert train["grads_mb"] == pytest.approx(4000 / MB)
    assert train["optimizer_mb"] == pytest.approx(8000 / MB)  # AdamW: two fp32 moments
    assert train["residual_mb"] == pytest.approx(2 * 16 * 64 * 4 / MB)  # fp32 residual stream
    assert train["scores_mb"] == pytest.approx(2 * 4 * 16 * 16 * 2 / MB)  # bf16 (B, h, T, T)
    assert train["logits_mb"] == pytest.approx(2 * 16 * 256 * 2 / MB)
    forward = analytic_sizes_mb(tiny(mode="forward", precision="fp32"), params=1000)
    assert forward["grads_mb"] == forward["optimizer_mb"] == 0
    assert forward["scores_mb"] == pytest.approx(2 * 4 * 16 * 16 * 4 / MB)
    assert analytic_sizes_mb(tiny(mode="forward-backward"), 1000)["optimizer_mb"] == 0


def test_memory_table_sets_measured_peak_against_state(tmp_path) -> None:
    store = ResultsStore(tmp_path)
    run_sweep([tiny(mode="forward"), tiny(mode="train-step")], store)
    records = store.records()
    table = memory_table(records).set_index("mode")
    for record in records:
        row = table.loc[record.config.mode]
        assert row["peak_mb"] == peak_mb(record) == max(p["peak_rss_mb"] for p in record.memory.values())
        assert row["state_mb"] == pytest.approx(row["params_mb"] + row["grads_mb"] + row["optimizer_mb"])
        assert row["beyond_state_mb"] == pytest.approx(row["peak_mb"] - row["state_mb"])
        assert row["params_mb"] == pytest.approx(record.params * 4 / MB)
    shown = memory_display(memory_stats(records))
    assert list(shown.columns)[:2] == ["Model", "Peak RSS (MB)"]  # a CPU run: resident set, not allocator


def test_a_cuda_graph_modes_allocated_peak_is_not_read_as_activations() -> None:
    """On the H200's records (reports/h200-issue14/five-sizes), compile max-autotune's forward-backward steps peaked
    below the parameters and gradients they hold (the graph pool is not in allocated bytes during replay): the table
    leaves their Peak − state out, the finding names each and gives the reserved peak; compile default's stay read."""
    from pathlib import Path

    from lmbench.analysis.findings.memory import graph_pool
    from lmbench.results.store import latest_per_key

    run = Path(__file__).resolve().parents[1] / "reports" / "h200-issue14" / "five-sizes"
    records = [r for r in latest_per_key(ResultsStore(run).records()) if r.config.mode == "forward-backward"]
    graphed = [r for r in records if r.config.compile == "max-autotune"]
    default = [r for r in records if r.config.compile == "default"]
    assert len(graphed) == len(default) == 5
    table = memory_table(graphed + default).set_index("key")
    assert table.loc[[r.key for r in graphed], "beyond_state_mb"].isna().all()
    assert table.loc[[r.key for r in default], "beyond_state_mb"].notna().all()
    found = graph_pool(graphed)
    assert found.numbers["below_params_and_grads"] == [r.label for r in graphed]
    big = next(r for r in graphed if r.label == "2.7B")
    assert found.numbers["reserved_mb"]["2.7B"] == max(p["peak_reserved_mb"] for p in big.memory.values()) == 40322.0
    assert "2.7B 13,256 MB allocated < 25,992 MB" in found.claim and "2.7B 40,322 MB" in found.claim
    assert graph_pool(default) is None
