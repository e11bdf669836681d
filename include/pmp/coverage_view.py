"""The coverage and freshness view of the Airflow UI: a FastAPI app the bundle's plugin mounts on the
api-server under ``/pmp`` (``pmp.plugin``), shown in the UI's navigation as an external view.

``GET /pmp/coverage?iso=ercot[&start=2019-01-01&end=2026-12-08]`` is one page per ISO (tabs for
the others): for each real-time dataset its freshness (newest data, age, the limit its check
applies), and for each dataset a day-by-day heat map, one line per year, each day coloured by what
its daily check recorded (:mod:`pmp.coverage`): complete, partial (hover: the problems and the
missing UTC interval starts), missing, in progress, or not checked yet. ``GET /pmp/coverage.json``
gives the same as JSON. Two indexed queries per page, whatever the span.

Both need a signed-in Airflow user allowed to use the website (:func:`authorized`): the same JWT as
the UI and the REST API, from the ``Authorization: Bearer`` header or the UI's session cookie (the
view inside the UI sends the cookie), checked by the deployment's auth manager.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from pmp import registry


async def authorized(request: Request) -> None:
    """The view's access rule: an Airflow user the auth manager lets see the website (401 without a
    token, 403 when the auth manager refuses). A plugin's FastAPI app gets no authentication from
    the api-server by itself, so it uses the api-server's own ``get_user`` (header, bearer or the
    UI's ``_token`` cookie; imported here: task processes load the plugin too, without the
    api-server's modules)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None
    user = await get_user(request, None, bearer)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(403, "this Airflow user may not see the coverage view")


app = FastAPI(title="Power Market Pipeline: coverage", docs_url=None, redoc_url=None, openapi_url=None,
              dependencies=[Depends(authorized)])

COLOURS = {"complete": "#2e7d32", "partial": "#f9a825", "missing": "#c62828", "in_progress": "#64b5f6",
           "unchecked": "#d9d9d9"}
LABELS = {"complete": "complete", "partial": "partial", "missing": "missing", "in_progress": "in progress",
          "unchecked": "not checked"}


def _span(iso: str, start: date | None, end: date | None) -> tuple[date, date]:
    first = min(s.first_date for s in registry.datasets(iso))
    today = datetime.now(UTC).date()
    start, end = start or first, end or today + timedelta(days=1)
    if end <= start:
        raise HTTPException(400, f"end {end} is not after start {start}")
    return start, end


def _iso(iso: str | None) -> str:
    isos = registry.isos()
    iso = (iso or isos[0]).lower()
    if iso not in isos:
        raise HTTPException(404, f"unknown ISO {iso!r}; known: {', '.join(isos)}")
    return iso


def _read(iso: str, start: date, end: date) -> tuple[list[Any], list[Any]]:
    from pmp import coverage, db

    with db.connect_ready() as conn:
        return coverage.grid(conn, iso, start, end), coverage.freshness(conn, iso)


def _minutes(m: float | None) -> str:
    if m is None:
        return "–"
    if m < 120:
        return f"{m:.0f} min"
    return f"{m / 60:.1f} h" if m < 48 * 60 else f"{m / 1440:.1f} d"


def _cell_status(row: Any, day: date, today: date) -> tuple[str, str]:
    cell = row.cells.get(day)
    if cell is not None:
        tip = f"{day} {LABELS[cell.status]}: {cell.detail}"
        if cell.missing:
            tip += "\nmissing intervals (UTC): " + ", ".join(cell.missing)
        return cell.status, tip
    if day < row.spec.first_date:
        return "", ""
    return ("unchecked", f"{day}: not checked yet") if day <= today else ("", "")


def render(iso: str, start: date, end: date, rows: list[Any], fresh: list[Any]) -> str:
    today = datetime.now(UTC).date()
    esc = html.escape
    tabs = " ".join(
        f'<a class="tab{" on" if i == iso else ""}" href="?iso={i}">{i.upper()}</a>' for i in registry.isos())
    legend = " ".join(f'<span class="lg"><i style="background:{c}"></i>{LABELS[s]}</span>' for s, c in COLOURS.items())
    out = [f"""<!doctype html><html><head><meta charset="utf-8"><title>Coverage: {iso.upper()}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:16px;color:#222}} h1{{font-size:20px;margin:0 0 8px}}
h2{{font-size:15px;margin:18px 0 4px}} .tab{{padding:3px 8px;border:1px solid #bbb;border-radius:4px;
text-decoration:none;color:#234;margin-right:4px}} .tab.on{{background:#234;color:#fff}}
table{{border-collapse:collapse;font-size:13px}} td,th{{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}}
.ok{{color:#2e7d32;font-weight:600}} .stale{{color:#c62828;font-weight:600}}
.yr{{display:flex;align-items:center;height:12px;margin:1px 0}} .yl{{width:42px;font-size:11px;color:#666}}
.d{{display:inline-block;width:3px;height:11px;margin-right:1px}}
{"".join(f".{s}{{background:{c}}}" for s, c in COLOURS.items())}
.lg{{margin-right:12px;font-size:12px}} .lg i{{display:inline-block;width:10px;height:10px;margin-right:4px}}
.sum{{font-size:12px;color:#555;margin-left:8px}}
</style></head><body>
<h1>Coverage and freshness — {iso.upper()}</h1><div>{tabs}</div>
<p style="font-size:12px;color:#555">Market days {start} – {end - timedelta(days=1)} (local), as each
day's check recorded them (the checks of <code>pmp catalog</code>); hover a day for its detail. {legend}</p>"""]
    if fresh:
        out.append("<h2>Freshness of the real-time datasets</h2><table id=\"freshness\"><tr><th>dataset</th>"
                   "<th>newest data (UTC)</th><th>age</th><th>limit</th><th>state</th><th>checked</th></tr>")
        for f in fresh:
            state = ('<span class="ok">fresh</span>' if f.fresh else '<span class="stale">stale</span>'
                     if f.newest else "never checked")
            newest = f.newest.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if f.newest else "–"
            checked = f.checked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if f.checked_at else "–"
            out.append(f'<tr data-dataset="{esc(f.spec.dataset)}"><td>{esc(f.spec.dataset)}</td><td>{newest}</td>'
                       f"<td>{_minutes(f.age_minutes)}</td><td>{_minutes(f.max_lag_minutes)}</td><td>{state}</td>"
                       f"<td>{checked}</td></tr>")
        out.append("</table>")
    out.append("<h2>Day by day</h2>")
    for row in rows:
        counts = row.counts()
        summary = ", ".join(f"{n} {LABELS[s]}" for s, n in counts.items() if n)
        out.append(f'<div class="ds" data-dataset="{esc(row.spec.dataset)}"><h2>{esc(row.spec.dataset)}'
                   f'<span class="sum">{esc(row.spec.title)} · {summary or "nothing checked yet"}</span></h2>')
        for year in range(start.year, (end - timedelta(days=1)).year + 1):
            first, last = max(start, date(year, 1, 1)), min(end, date(year + 1, 1, 1))
            cells = []
            day = first
            while day < last:
                status, tip = _cell_status(row, day, today)
                if status:
                    cells.append(f'<span class="d {status}" data-day="{day}" title="{esc(tip)}"></span>')
                else:
                    cells.append('<span class="d"></span>')
                day += timedelta(days=1)
            pad = (first - date(year, 1, 1)).days
            out.append(f'<div class="yr"><span class="yl">{year}</span>{"<span class=d></span>" * pad}'
                       f'{"".join(cells)}</div>')
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


@app.get("/coverage", response_class=HTMLResponse)
def coverage_page(iso: str | None = None, start: date | None = None, end: date | None = None) -> str:
    iso = _iso(iso)
    start, end = _span(iso, start, end)
    rows, fresh = _read(iso, start, end)
    return render(iso, start, end, rows, fresh)


@app.get("/coverage.json")
def coverage_json(iso: str | None = None, start: date | None = None,
                  end: date | None = None) -> dict[str, Any]:
    iso = _iso(iso)
    start, end = _span(iso, start, end)
    rows, fresh = _read(iso, start, end)
    return {
        "iso": iso, "start": start.isoformat(), "end": end.isoformat(),
        "datasets": {r.spec.dataset: {c.day.isoformat(): {"status": c.status, "rows": c.rows, "detail": c.detail,
                                                          "missing": c.missing} for c in r.cells.values()}
                     for r in rows},
        "freshness": {f.spec.dataset: {"newest": f.newest.isoformat() if f.newest else None,
                                       "age_minutes": f.age_minutes, "max_lag_minutes": f.max_lag_minutes,
                                       "fresh": f.fresh} for f in fresh},
    }
