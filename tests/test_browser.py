"""The Airflow UI in a real browser: Selenium driving Debian's headless Chromium (``chromium`` and
``chromium-driver``, installed by ``scripts/services.sh install browser``) against a real local Airflow
(tests/live.py) and the simulator.

It finds every ISO's DAGs with their Markdown docs, triggers an ERCOT daily run from the UI, waits
for it to succeed, opens the coverage view (Browse → Coverage, the bundle's plugin) and checks that
the day the run loaded shows complete. Screenshots go to ``.pmp/screenshots/`` (test artifacts, not
committed); ``PMP_DOCS_SCREENSHOTS=docs`` also copies the coverage view's to ``docs/coverage-view.png``
and the DAG page's (deadline panel, asset events) to ``docs/deadline-panel.png`` (the README's)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from live import LiveAirflow, scratch_warehouse

from pmp import registry, summary
from pmp.simulator.server import start_simulator

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live-airflow")]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / ".pmp" / "screenshots"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
DAILY = "ercot_lmp_dam_daily"
# one daily DAG per ISO (every ISO's DAGs come from the same factory and doc template)
DAGS = sorted({f"{s.iso}_lmp_dam_daily" for s in registry.datasets() if s.dataset == "lmp_dam"})


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.fail("Chromium is not installed: run scripts/services.sh install browser (Debian's chromium, "
                    "chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=opts)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _until(what: str, probe: Callable[[], Any], timeout: float = 90, driver: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if got := probe():
                return got
        except Exception as exc:  # the page is still rendering: elements come and go
            last = exc
        time.sleep(0.5)
    if driver is not None:
        _shot(driver, f"failed-{what.replace(' ', '-')[:40]}")
    raise AssertionError(f"{what}: not seen in {timeout:.0f}s (last error: {last!r})")


def _docs(driver: Any) -> str:
    """Open the DAG's documentation (the book button of the DAG header) and return its text."""
    from selenium.webdriver.common.by import By

    button = _until("docs button", lambda: next(
        b for b in driver.find_elements(By.CSS_SELECTOR, "button")
        if "dag doc" in (b.get_attribute("aria-label") or b.get_attribute("title") or "").lower()), driver=driver)
    button.click()
    dialog = _dialog(driver, "Dag Documentation")
    text = _until("docs text", lambda: (t := dialog.get_attribute("textContent") or "") and "Tasks:" in t and t,
                  driver=driver)
    heading = dialog.find_elements(By.CSS_SELECTOR, "h3")
    assert heading, "the doc_md's ### heading is not rendered as Markdown"
    return str(text)


def _dialog(driver: Any, title: str) -> Any:
    """The open dialog whose text has ``title`` (the page holds other, hidden role=dialog popovers)."""
    from selenium.webdriver.common.by import By

    return _until(f"the {title!r} dialog", lambda: next(
        d for d in driver.find_elements(By.CSS_SELECTOR, "[role=dialog]") if d.is_displayed() and title in d.text),
        driver=driver)


def _close_dialog(driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    _until("dialog closed", lambda: not [d for d in driver.find_elements(By.CSS_SELECTOR, "[role=dialog]")
                                         if d.is_displayed() and "Dag Documentation" in d.text], driver=driver)


def test_ui_docs_trigger_and_coverage_view(services: dict, staging: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    ct = ZoneInfo("America/Chicago")
    with scratch_warehouse() as (tsdb, _), start_simulator() as sim, \
            LiveAirflow([*DAGS, summary.DAG_ID], sim_url=sim.url, connections={"tsdb": tsdb}) as af:
        af.wait_serialized([*DAGS, summary.DAG_ID])
        driver.get(af.url + "/dags")
        # every ISO's DAGs are listed, with their Markdown docs
        for iso in registry.isos():
            dag_id = f"{iso}_lmp_dam_daily"
            title = f"{iso.upper()} lmp_dam (daily history)"  # the DAG's display name
            _until(f"{dag_id} in the DAG list", lambda t=title: t in driver.find_element(By.TAG_NAME, "body").text,
                   driver=driver)
            driver.get(f"{af.url}/dags/{dag_id}")
            text = _docs(driver)
            spec = registry.get(iso, "lmp_dam")
            assert f"{spec.title} — daily history" in text and spec.source in text, text[:300]
            assert "Deadline alerts" in text and "airflow backfill create" in text
            _close_dialog(driver)
            driver.get(af.url + "/dags")
        _until("the DAG list", lambda: "ERCOT lmp_dam" in driver.find_element(By.TAG_NAME, "body").text, driver=driver)
        _shot(driver, "dag-list")

        # trigger the ERCOT day-ahead daily DAG from the UI (unpaused first, as a user would)
        af.unpause(summary.DAG_ID, DAILY)  # the summary runs on the load's asset event (shown beside the run)
        before = {r["dag_run_id"] for r in af.runs(DAILY)}
        driver.get(f"{af.url}/dags/{DAILY}")
        trigger = _until("Trigger button", lambda: next(
            b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Trigger"), driver=driver)
        trigger.click()
        dialog = _dialog(driver, "Trigger")
        _shot(driver, "trigger-dialog")
        confirm = _until("Trigger in the dialog", lambda: [
            b for b in dialog.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Trigger"][-1],
            driver=driver)
        confirm.click()
        manual = _until("the manual run", lambda: [r for r in af.runs(DAILY) if r["dag_run_id"] not in before
                                                   and r["run_type"] == "manual"], timeout=60, driver=driver)
        # polled with patience: on two busy cores one API call can take over a minute
        run = _until("the run finished", lambda: (r := af.run(DAILY, manual[0]["dag_run_id"]))["state"] in (
            "success", "failed") and r, timeout=600, driver=driver)
        assert run["state"] == "success", af.diagnose()
        # the run's market day: the last whole local day before its logical date
        end = datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00"))
        day = (end.astimezone(ct) - timedelta(hours=1)).date()
        _until("the asset-triggered summary run", lambda: [
            r for r in af.runs(summary.DAG_ID) if r["run_type"] == "asset_triggered" and r["state"] == "success"],
            timeout=300, driver=driver)
        driver.get(f"{af.url}/dags/{DAILY}")
        _until("the load's asset event on the DAG page", lambda: "pmp.ercot.lmp_dam" in driver.find_element(
            By.TAG_NAME, "body").text, driver=driver)
        deadlines = [b for b in driver.find_elements(By.CSS_SELECTOR, "button") if "deadline" in b.text.lower()]
        if deadlines:  # the deadline panel opens on hover (the README's screenshot)
            from selenium.webdriver.common.action_chains import ActionChains

            ActionChains(driver).move_to_element(deadlines[0]).perform()
            time.sleep(1)
        panel = _shot(driver, "deadline-panel")

        # the coverage view inside the UI (external view of the plugin), and the day shown complete
        driver.get(f"{af.url}/plugin/pmp-coverage")
        frame = _until("the coverage view's frame", lambda: driver.find_element(By.TAG_NAME, "iframe"), driver=driver)
        driver.switch_to.frame(frame)
        # the ISO tab: ercot (the view opens on the first ISO)
        if "Coverage and freshness — ERCOT" not in driver.page_source:
            _until("ERCOT tab", lambda: driver.find_element(By.LINK_TEXT, "ERCOT"), driver=driver).click()
        cell = _until("the loaded day's cell", lambda: driver.find_element(
            By.CSS_SELECTOR, f'div[data-dataset="lmp_dam"] span[data-day="{day.isoformat()}"]'), driver=driver)
        assert "complete" in cell.get_attribute("class").split(), cell.get_attribute("title")
        assert cell.get_attribute("title").startswith(f"{day} complete")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                              driver.find_element(By.CSS_SELECTOR, 'div[data-dataset="lmp_dam"]'))
        driver.switch_to.default_content()
        view = _shot(driver, "coverage-view")
        # the same data as JSON through the REST API's JWT (the local Airflow signs every request in as
        # an admin; sign-in itself: tests/test_live_observability.py)
        signed = httpx.get(f"{af.url}/pmp/coverage.json", params={"iso": "ercot"}, timeout=120,
                           headers={"Authorization": f"Bearer {af.token()}"})
        assert signed.status_code == 200, signed.text[:300]
        assert signed.json()["datasets"]["lmp_dam"][day.isoformat()]["status"] == "complete"
    if os.environ.get("PMP_DOCS_SCREENSHOTS"):
        target = ROOT / os.environ["PMP_DOCS_SCREENSHOTS"]
        shutil.copy(view, target / "coverage-view.png")
        shutil.copy(panel, target / "deadline-panel.png")
