"""``pmp plan-history``: runs, requests, rows and hours of a full catch-up, from measured figures."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from pmp import history, plan, registry
from pmp.cli import main


def test_rate_limits_are_the_hooks_declared_pacing() -> None:
    caiso, miso, isone = plan.rate_limit("caiso"), plan.rate_limit("miso"), plan.rate_limit("isone")
    assert caiso and caiso.per_minute == 12.0 and "min_request_interval_seconds = 5" in caiso.source  # 1 / 5 s
    assert miso and miso.per_minute == 1.0  # MISO's public API: one call a minute
    assert isone and isone.per_minute == 6.0  # ISO Express: one request every 10 s
    pjm = plan.rate_limit("pjm")
    assert pjm and pjm.per_minute == 6.0  # Data Miner 2, non-members


def test_monthly_route_runs_once_a_month_and_once_a_day_in_the_recent_window() -> None:
    today = date(2024, 3, 15)
    nyiso, caiso, pjm = (registry.get(iso, "lmp_dam") for iso in ("nyiso", "caiso", "pjm"))
    figures = plan.Measured(per_day={nyiso.key: (2.0, 360.0), caiso.key: (1.0, 1000.0), pjm.key: (1.0, 500.0)},
                            dataset_days_per_hour=100.0)
    p_nyiso, p_caiso, p_pjm = (plan.plan_dataset(s, date(2019, 1, 1), today, figures) for s in (nyiso, caiso, pjm))
    days = (date(2024, 3, 14) - date(2019, 1, 1)).days + 1
    assert p_nyiso.days == p_caiso.days == p_pjm.days == days
    assert history.cutoff(nyiso, today) == date(2024, 3, 1)
    # 62 months 2019-01 .. 2024-02, then 14 daily runs (2024-03-01 .. 03-14)
    assert (p_nyiso.route, p_nyiso.runs) == ("month", 62 + 14)
    assert (p_caiso.route, p_caiso.runs) == ("month", 62 + 14)
    assert (p_pjm.route, p_pjm.runs) == ("month", 62 + 14)
    # NYISO: one archive per document family and run; CAISO and PJM: still one request per
    # document and day (the monthly run saves task start-ups, not requests); each plus one
    # discovery request per run
    assert p_nyiso.requests == 76 * 2 + 76
    assert p_caiso.requests == days * 1 + 76
    assert p_pjm.requests == days * 1 + 76
    assert p_nyiso.rows == 360.0 * days
    assert p_caiso.floor_hours == pytest.approx((days + 76) / (12 * 60))  # 1 request / 5 s
    assert p_pjm.floor_hours == pytest.approx((days + 76) / (6 * 60))  # 6 a minute
    assert p_pjm.machine_hours == pytest.approx(days / 100.0)
    # PJM's feeds it keeps whole (fuel mix): one paged range query per feed and month run
    fuel = registry.get("pjm", "fuel_mix")
    assert history.archive_runs(fuel) and not history.archive_runs(pjm)
    p_fuel = plan.plan_dataset(fuel, date(2019, 1, 1), today, plan.Measured(per_day={fuel.key: (1.0, 240.0)}))
    assert (p_fuel.route, p_fuel.runs, p_fuel.requests) == ("month", 76, 62 * 1 + 14 * 1 + 76)


@pytest.mark.parametrize("iso", ["caiso", "ercot", "isone", "miso", "nyiso", "pjm", "spp"])
def test_every_iso_with_a_monthly_history_dag_plans_monthly_runs(iso: str) -> None:
    """The plan's route is the ISO's history DAG (``history_window`` of its adapter), for every dataset."""
    today = date(2026, 12, 7)  # cutoff 2026-11-01: whole months before it, then 36 daily runs
    for spec in registry.datasets(iso):
        assert history.has_history_dag(spec), spec.key
        p = plan.plan_dataset(spec, date(2019, 1, 1), today, plan.Measured())
        first = max(date(2019, 1, 1), spec.first_date)
        assert first < date(2026, 11, 1), spec.key
        assert (p.route, p.runs) == ("month", plan.months_between(first, date(2026, 11, 1)) + 36), spec.key


def test_an_iso_without_a_bulk_route_plans_one_run_per_market_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ISO whose adapter declares no ``history_window`` (a new ISO before its history route) gets
    one run, and one discovery request, per market day."""
    spec = registry.get("pjm", "lmp_dam")
    monkeypatch.delattr(type(registry.adapter("pjm")), "history_window")
    figures = plan.Measured(per_day={spec.key: (1.0, 500.0)}, dataset_days_per_hour=100.0)
    p = plan.plan_dataset(spec, date(2019, 1, 1), date(2024, 3, 15), figures)
    days = (date(2024, 3, 14) - date(2019, 1, 1)).days + 1
    assert (p.route, p.runs) == ("day", days)
    assert p.requests == days * 1 + days
    assert p.floor_hours == pytest.approx(2 * days / (6 * 60))


def test_plan_history_reads_what_the_warehouse_loaded(private_warehouse: str, staging: str, use_simulator,
                                                      capsys, tmp_path: Path) -> None:
    use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    assert main(["download", "--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-02",
                 "--end", "2024-11-05", "--quiet"]) == 0
    with psycopg.connect(private_warehouse) as conn:
        loaded = conn.execute("SELECT count(*), count(DISTINCT market_day), sum(rows) FROM ingest_log "
                              "WHERE iso = 'ercot' AND dataset = 'lmp_dam'").fetchone()
    docs, days, rows = loaded
    assert days == 3 and rows > 0
    result = tmp_path / "catchup.json"
    result.write_text(json.dumps({"dataset_days_per_hour": 250.0, "measured_at": "2026-12-07T06:00Z",
                                  "per_day": {"ercot.lmp_dam": {"documents": 99, "rows": 1}}}))
    capsys.readouterr()
    assert main(["plan-history", "--iso", "ercot", "--start", "2024-01-01", "--today", "2024-11-05",
                 "--measured", str(result)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("ercot.lmp_dam "))
    cells = line.split()
    n_days = (date(2024, 11, 4) - date(2024, 1, 1)).days + 1
    # monthly history runs for 2024-01 .. 2024-09 (cutoff 2024-10-01), then 35 daily runs
    recent = (date(2024, 11, 5) - date(2024, 10, 1)).days
    assert cells[1] == f"{n_days:,}" and cells[2] == "month" and cells[3] == f"{9 + recent:,}"
    # the warehouse's own figures win over the benchmark's: the archive takes 1,000 documents a
    # request in a month run, a recent day one request per document; one discovery per run
    month_requests = 9 * math.ceil((n_days - recent) * docs / days / 9 / 1000)
    assert cells[4] == f"{math.ceil(month_requests + recent * docs / days + 9 + recent):,}"
    assert cells[5] == f"{math.ceil(n_days * rows / days):,}"
    api = plan.rate_limit("ercot")
    assert api and f"{api.per_minute:g}/min" in line
    dataset_days = sum(max(0, (date(2024, 11, 5) - max(date(2024, 1, 1), s.first_date)).days)
                       for s in registry.datasets("ercot"))
    assert f"dataset_days={dataset_days:,} " in out
    assert f"machine_hours={dataset_days / 250:.1f} at 250 dataset-days/h" in out
    assert "iso_pacing_floor_hours=" in out and "iso_pacing_floor_hours=?" not in out


def test_plan_history_without_measurements_says_what_to_run(tmp_path: Path, capsys) -> None:
    assert main(["plan-history", "--iso", "pjm", "--no-warehouse", "--measured", str(tmp_path / "none.json")]) == 0
    out = capsys.readouterr().out
    assert "machine_hours=? (no measured throughput: run python bench/catchup.py)" in out
    assert "not measured yet" in out and "pjm.lmp_dam" in out


def test_plan_history_bad_result_file_names_it(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "catchup.json"
    bad.write_text("{not json")
    assert main(["plan-history", "--no-warehouse", "--measured", str(bad)]) == 2
    assert f"{bad}: not a catch-up result file" in capsys.readouterr().err
