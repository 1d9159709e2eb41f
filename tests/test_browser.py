"""`lmbench profile` traces render in TensorBoard's PyTorch Profiler plugin, checked in a real browser.

Headless Chromium (Debian's `chromium` and `chromium-driver`, installed by .ci/run) reads the page as a
person sees it: the run in the Runs selector, the views, the Overview's cards and step table, the
Operator view's table. profiling/tensorboard_screenshot.py serves and drives the page; offline, it
stands in for Google Charts, which the plugin would fetch from the internet (see its docstring).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import REPO_ROOT, cli_env, run_main

CAPTURE = "tiny-forward-backward-fp32-sdpa-b2-ctx32"
STEPS = 2
SCRIPT = REPO_ROOT / "profiling" / "tensorboard_screenshot.py"

missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not Path(p).exists()]
pytestmark = [pytest.mark.skipif(bool(missing), reason=f"no {' or '.join(missing)}: apt-get install "
                                 "chromium chromium-driver (.ci/run does)"),
              pytest.mark.slow]  # real processes: a TensorBoard server and headless Chromium
pytest.importorskip("selenium", reason="selenium is in the test extra: pip install -e '.[test]'")
sys.path.insert(0, str(SCRIPT.parent))
import tensorboard_screenshot as tbs  # noqa: E402  (profiling/ is scripts, not a package)
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="session")
def trace_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TensorBoard logdir holding one `lmbench profile` capture under run/<capture>."""
    logdir = tmp_path_factory.mktemp("tb")
    proc = run_main(["profile", "--size", "tiny", "--device", "cpu", "--ctx", "32", "--batch", "2",
                     "--warmup", "1", "--steps", str(STEPS), "--vocab-size", "256",
                     "--trace-dir", str(logdir / "run")], cwd=logdir)
    assert proc.returncode == 0, proc.stderr
    assert list((logdir / "run" / CAPTURE).glob("*.pt.trace.json.gz")), proc.stdout
    return logdir


@pytest.fixture(scope="module")
def page(trace_logdir: Path) -> Iterator:
    """The plugin's page in headless Chromium, inside its iframe, with the run loaded."""
    with tbs.serve(trace_logdir) as url:
        driver = tbs.open_profiler(url)
        try:
            yield driver
        finally:
            driver.quit()


def test_run_and_views_are_listed(page):
    assert tbs.selected(page, "Runs") == f"run/{CAPTURE}"
    assert tbs.options(page, "Runs") == [f"run/{CAPTURE}"]
    views = tbs.options(page, "Views")
    assert {"Overview", "Operator", "Trace"} <= set(views), views
    assert "GPU Kernel" not in views  # a CPU-only trace: no device views invented
    assert len(tbs.options(page, "Workers")) == 1


def test_overview_shows_step_times(page):
    text = tbs.show_view(page, "Overview")
    for title in ("Configuration", "Execution Summary", "Step Time Breakdown", "Performance Recommendation"):
        assert title in text
    assert "Device Type\nCPU" in text and "Average Step Time" in text
    card = page.find_element(By.XPATH, "//span[normalize-space(text())='Step Time Breakdown']"
                                       "/ancestor::div[contains(@class,'MuiCard-root')][1]")
    rows = card.find_elements(By.CSS_SELECTOR, "table tr")
    assert [c.text for c in rows[0].find_elements(By.TAG_NAME, "th")][:1] == ["Step"]
    # one row per profiled step: the profiler schedule traced exactly the measured steps
    assert len(rows) - 1 == STEPS
    for row in rows[1:]:
        cpu_exec = float(row.find_elements(By.TAG_NAME, "td")[2].text)
        assert cpu_exec > 0


def test_operator_view_lists_aten_ops(page):
    text = tbs.show_view(page, "Operator")
    assert "Operator View" in text
    rows = page.find_elements(By.CSS_SELECTOR, ".ant-table-tbody tr.ant-table-row")
    names = [row.find_element(By.CSS_SELECTOR, "td").text for row in rows]
    assert any(name.startswith("aten::") for name in names), names
    assert "aten::mm" in names  # the linear layers' matmuls


def test_screenshot_script(trace_logdir, tmp_path):
    out = tmp_path / "overview.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(trace_logdir), str(out), "--view", "Overview"],
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    # the page with only the left panel and a spinner (the main panel unrendered) is about 30 KB
    assert len(data) > 60_000, len(data)
