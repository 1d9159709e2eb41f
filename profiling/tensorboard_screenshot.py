"""Screenshot TensorBoard's PyTorch Profiler plugin (torch-tb-profiler) for a trace directory.

Usage: python profiling/tensorboard_screenshot.py LOGDIR OUT.png [--view Overview]

Starts `tensorboard --logdir LOGDIR` on a free loopback port, opens the plugin in headless Chromium
(Debian's `chromium` and `chromium-driver`, driven by Selenium), waits until a run is loaded and the
chosen view has rendered, saves a screenshot and stops TensorBoard. tests/test_browser.py imports it.

The plugin loads Google Charts from www.gstatic.com at run time; without internet access (CI has none)
its main panel spins forever. So the browser never asks that host: it is blocked, and OFFLINE_CHARTS
stands in for Google Charts, drawing each chart's data as a plain HTML table. Everything else is the
plugin's own page and data. The Trace view's viewer also needs a polyfill from cdnjs (blocked too), so
offline it stays blank: its iframe is there, its timeline is not.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BLOCKED = ["*gstatic.com*", "*cdnjs.cloudflare.com*"]
# Just enough of google.charts / google.visualization for the calls in the plugin's index.html; the
# listeners it adds (hover, select, ready) never fire here, so only draw() has to do anything.
OFFLINE_CHARTS = r"""
if (location.pathname.startsWith('/data/plugin/pytorch_profiler/')) {
  class DataTable {
    constructor() { this.cols = []; this.rows = []; }
    addColumn(c, label) { this.cols.push(typeof c === 'string' ? {type: c, label} : c); }
    addRows(rows) { rows.forEach(r => this.rows.push(r)); }
    addRow(r) { this.rows.push(r || []); }
    setProperty() {}
  }
  const text = v => (v && typeof v === 'object' ? (v.f ?? v.v) : (v ?? ''));
  class Chart {
    constructor(el) { this.el = el; }
    draw(data, opts) {  // a table of the chart's data; columns with a role (tooltip, style) are decoration
      const keep = data.cols.map((c, i) => (c.role ? -1 : i)).filter(i => i >= 0);
      const table = document.createElement('table');
      table.className = 'offline-chart';
      if (opts && opts.title) table.createCaption().textContent = opts.title;
      const head = table.insertRow();
      keep.forEach(i => { head.appendChild(document.createElement('th')).textContent = data.cols[i].label; });
      for (const r of data.rows) {
        const tr = table.insertRow();
        keep.forEach(i => { tr.insertCell().textContent = text(r[i]); });
      }
      this.el.replaceChildren(table);
    }
    clearChart() { this.el.replaceChildren(); }
    setSelection() {}
  }
  const visualization = {DataTable, events: {addListener() {}},
    arrayToDataTable(rows) { const t = new DataTable(); rows[0].forEach(l => t.addColumn('string', l));
      t.addRows(rows.slice(1)); return t; }};
  for (const k of ['Table', 'PieChart', 'ColumnChart', 'ComboChart', 'LineChart', 'SteppedAreaChart', 'Timeline'])
    visualization[k] = Chart;
  window.google = {charts: {load: () => Promise.resolve()}, visualization};
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(logdir: Path, timeout: float = 60) -> Iterator[str]:
    """Run TensorBoard on LOGDIR; yield its URL once it answers; stop it on exit."""
    url = f"http://127.0.0.1:{free_port()}"
    # its log goes to a file, not a pipe: nobody reads a pipe while it runs, and a full one blocks it
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
                                 "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"tensorboard exited {proc.returncode}: {log.read()[-2000:]}")
                try:  # the plugin's own endpoint, not just the front page: it is what the page asks
                    urllib.request.urlopen(f"{url}/data/plugin/pytorch_profiler/runs", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"tensorboard did not answer on {url} within {timeout:.0f} s")
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def open_profiler(url: str, timeout: float = 60) -> webdriver.Chrome:
    """Headless Chromium on the plugin's page, switched into its iframe, once a run is selected."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root; the rest keep Chromium from calling home in the background
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OFFLINE_CHARTS})
        driver.get(f"{url}/#pytorch_profiler")
        wait = WebDriverWait(driver, timeout)
        # TensorBoard hosts the plugin in an iframe (plugin_entry.html, which navigates to index.html)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe"))
        driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "iframe"))
        wait.until(lambda d: selected(d, "Runs"))
        return driver
    except BaseException:
        driver.quit()
        raise


def _select(driver: webdriver.Chrome, label: str) -> list[WebElement]:
    """The MUI select under the left panel's subheader LABEL (Runs, Views, Workers, Spans), if shown."""
    return driver.find_elements(By.XPATH, f"//li[contains(@class,'MuiListSubheader')][normalize-space()="
                                          f"'{label}']/following-sibling::div[1]//div[@aria-haspopup='listbox']")


def selected(driver: webdriver.Chrome, label: str) -> str:
    """The value shown in the left panel's select LABEL ("" while there is none)."""
    return next((e.text.strip() for e in _select(driver, label)), "")


def options(driver: webdriver.Chrome, label: str) -> list[str]:
    """The entries of a left-panel select, read from its open menu (MUI renders it only while open)."""
    _select(driver, label)[0].click()
    def shown(d: webdriver.Chrome) -> list[str] | None:  # .text is "" until the menu has faded in
        texts = [e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li[role=option]")]
        return texts if texts and all(texts) else None

    texts = WebDriverWait(driver, 10).until(shown)
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)  # MUI listens on the focused menu
    WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "ul[role=listbox]"))
    return texts


def show_view(driver: webdriver.Chrome, view: str, timeout: float = 60) -> str:
    """Select VIEW in the left panel; wait until the main panel has content; return its text."""
    if selected(driver, "Views") != view:
        _select(driver, "Views")[0].click()
        option = f"//ul[@role='listbox']/li[@role='option'][normalize-space()='{view}']"
        WebDriverWait(driver, 10).until(  # clickable once the menu has faded in
            lambda d: next((e for e in d.find_elements(By.XPATH, option) if e.is_displayed()), None)).click()

    def rendered(d: webdriver.Chrome) -> bool:
        main = d.find_element(By.TAG_NAME, "main")
        # a spinner (role=progressbar) shows while the view's data loads; Trace is an iframe, no text
        return (selected(d, "Views") == view and not main.find_elements(By.CSS_SELECTOR, "[role=progressbar]")
                and bool(main.text.strip() or main.find_elements(By.TAG_NAME, "iframe")))

    WebDriverWait(driver, timeout).until(rendered)
    return driver.find_element(By.TAG_NAME, "main").text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--view", default="Overview")
    args = parser.parse_args()
    with serve(args.logdir) as url:
        driver = open_profiler(url)
        try:
            show_view(driver, args.view)
            driver.switch_to.default_content()  # the whole TensorBoard window, header included
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(args.out)


if __name__ == "__main__":
    main()
