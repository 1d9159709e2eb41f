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
