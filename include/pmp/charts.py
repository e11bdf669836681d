"""Charts of what the warehouse holds (``pmp plot``): a price heat map (local hour of day x day,
one location), load vs forecast, and the coverage heat map (dataset x day, from the production
checks). Each builder returns a :class:`Chart` (the data and how to draw it); :func:`save` writes a
PNG with matplotlib or an HTML page with plotly, chosen by the file name. matplotlib and plotly
are imported here only (the ``read`` extra), never by the DAGs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmp import read
from pmp.validate import InputError

if TYPE_CHECKING:
    import pandas as pd

STATUS = {"complete": 1.0, "in progress": 0.5, "incomplete": 0.0}  # coverage colours (NaN = no rows)


@dataclass
class Chart:
    kind: str  # "heatmap" or "lines"
    title: str
    xlabel: str
    ylabel: str
    data: pd.DataFrame  # heatmap: rows x columns of values; lines: index x, one column per series
    colorbar: str = ""
    styles: dict[str, str] = field(default_factory=dict)  # lines: series -> "solid" | "dashed"
    categorical: bool = False  # heatmap of STATUS values


def price_heatmap(iso: str, location: str | None, start: read.TimeLike, end: read.TimeLike, *,
                  market: str = "DAM", source: read.Source = "db") -> Chart:
    """Mean price per local hour of day (rows 0-23) and local day (columns). On the fall-back day
    the repeated hour 1 is the mean of both; on the spring-forward day hour 2 is empty."""
    if not location:
        raise InputError("price-heatmap needs --location (one location)")
    wh = read.Warehouse(source)
    df = wh.lmp(iso, start, end, market=market, locations=[location], local_time=True)
    if df.empty:
        raise InputError(f"no {market} prices for {location} in {iso} between {start} and {end}")
    local = df["interval_start_local"]
    frame = df.assign(day=local.dt.date, hour=local.dt.hour)
    grid = frame.pivot_table(index="hour", columns="day", values="lmp", aggfunc="mean").reindex(range(24))
    code = read.market_code(market)
    return Chart("heatmap", f"{iso.upper()} {code} LMP at {location} ($/MWh, mean per local hour)",
                 "market day", f"hour of day ({read.timezone_of(iso)})", grid, colorbar="$/MWh")


def load_vs_forecast(iso: str, start: read.TimeLike, end: read.TimeLike, *, area: str = "SYSTEM",
                     as_of: read.TimeLike | None = None, model: str | None = None,
                     source: read.Source = "db") -> Chart:
    """Hourly actual load and the forecast newest at ``as_of`` (default: the newest) for one area."""
    wh = read.Warehouse(source)
    actual = wh.load(iso, start, end, areas=[area])
    if not actual.empty:
        minutes = sorted({int(x.total_seconds() // 60) for x in actual["interval_end"] - actual["interval_start"]})
        actual = wh.load(iso, start, end, areas=[area], interval_minutes=minutes[-1],
                         resample="1h" if minutes[-1] < 60 else None)
    forecast = wh.load_forecast(iso, start, end, areas=[area], as_of=as_of, models=[model] if model else None)
    if actual.empty and forecast.empty:
        raise InputError(f"no load or forecast for {iso} {area} between {start} and {end}")
    tz = read.timezone_of(iso)
    series: dict[str, Any] = {}
    styles = {}
    if not actual.empty:
        series["actual"] = actual.set_index(actual["interval_start"].dt.tz_convert(tz))["load_mw"]
        styles["actual"] = "solid"
    for name, rows in forecast.groupby("model", sort=True):
        label = f"forecast {name}".strip() if name else "forecast"
        issued = rows["forecast_issued_at"].max().tz_convert(tz).strftime("%Y-%m-%d %H:%M")
        label += f" (newest issued {issued})"
        series[label] = rows.set_index(rows["interval_start"].dt.tz_convert(tz))["load_mw"]
        styles[label] = "dashed"
    import pandas as pd

    data = pd.DataFrame(series).sort_index()
    cutoff = f", as of {as_of}" if as_of else ""
    return Chart("lines", f"{iso.upper()} load, {area}: actual vs forecast{cutoff}", f"interval start ({tz})",
                 "MW", data, styles=styles)


def coverage(iso: str | None, start: read.TimeLike, end: read.TimeLike, *, quiet: bool = False) -> Chart:
    """Dataset x market day: complete, in progress, incomplete or empty (the checks of ``pmp catalog``)."""
    import pandas as pd

    from pmp import checks, db, registry
    from pmp.cli_read import progress

    first, last = _dates(start), _dates(end)
    days = [first + timedelta(days=i) for i in range((last - first).days)]
    if not days:
        raise InputError("coverage: --end must be after --start")
    specs = registry.datasets(iso)  # an unknown ISO: the registry's error, with the known ones
    rows = {}
    with db.connect() as conn, progress(len(specs), "coverage", quiet=quiet, unit="dataset") as bar:
        for spec in specs:
            values = []
            for c in checks.check_days(conn, spec, days):
                status = c.status if c.status in STATUS else "incomplete"
                values.append(STATUS[status] if c.rows else float("nan"))
            rows[spec.key] = values
            bar.update(1)
    grid = pd.DataFrame.from_dict(rows, orient="index", columns=days)
    scope = iso.upper() if iso else "all ISOs"
    return Chart("heatmap", f"Coverage, {scope}: complete / in progress / incomplete / no rows", "market day",
                 "dataset", grid, categorical=True)


def _dates(value: read.TimeLike) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value if not hasattr(value, "date") else value.date()  # type: ignore[union-attr]


def save(chart: Chart, out: str | Path) -> Path:
    """Write ``out``: ``.png`` with matplotlib, ``.html`` with plotly."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix == ".png":
        _png(chart, path)
    elif suffix in (".html", ".htm"):
        _html(chart, path)
    else:
        raise InputError(f"{out}: write a .png (matplotlib) or an .html (plotly) file")
    return path


def _labels(values: list[Any]) -> list[str]:
    return [v.isoformat() if isinstance(v, date) else str(v) for v in values]


def _png(chart: Chart, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("PNG charts need matplotlib: pip install 'power-market-pipeline[read]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    data = chart.data
    if chart.kind == "heatmap":
        fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * data.shape[1] + 3), max(3.5, 0.28 * data.shape[0] + 1.5)))
        if chart.categorical:
            cmap = ListedColormap(["#d62728", "#ffbf00", "#2ca02c"])
            cmap.set_bad("#dddddd")
            image = ax.imshow(data.to_numpy(dtype=float), aspect="auto", cmap=cmap, vmin=0, vmax=1,
                              interpolation="nearest")
            bar = fig.colorbar(image, ax=ax, ticks=[1 / 6, 0.5, 5 / 6])
            bar.ax.set_yticklabels(["incomplete", "in progress", "complete"])
        else:
            import numpy as np

            cmap = matplotlib.colormaps["viridis"].copy()
            cmap.set_bad("#dddddd")
            values = data.to_numpy(dtype=float)
            # 2nd-98th percentile colour range: one scarcity hour must not flatten the rest of the map
            low, high = np.nanpercentile(values, [2, 98]) if np.isfinite(values).any() else (0.0, 1.0)
            image = ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest", vmin=low,
                              vmax=max(high, low + 1e-9))
            fig.colorbar(image, ax=ax, label=chart.colorbar, extend="both")
        ax.set_xticks(range(data.shape[1]), _labels(list(data.columns)), rotation=45, ha="right")
        ax.set_yticks(range(data.shape[0]), _labels(list(data.index)))
    else:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        for column in data.columns:
            series = data[column].dropna()
            ax.plot(series.index, series.to_numpy(), label=column,
                    linestyle="--" if chart.styles.get(column) == "dashed" else "-")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
    ax.set_title(chart.title)
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _html(chart: Chart, path: Path) -> None:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError("HTML charts need plotly: pip install plotly (or write a .png)") from None
    data = chart.data
    if chart.kind == "heatmap":
        fig = go.Figure(go.Heatmap(z=data.to_numpy(dtype=float), x=_labels(list(data.columns)),
                                   y=_labels(list(data.index)), colorbar={"title": chart.colorbar},
                                   colorscale=[[0, "#d62728"], [0.5, "#ffbf00"], [1, "#2ca02c"]]
                                   if chart.categorical else "Viridis"))
    else:
        fig = go.Figure([go.Scatter(x=data[c].dropna().index, y=data[c].dropna().to_numpy(), name=c, mode="lines",
                                    line={"dash": "dash" if chart.styles.get(c) == "dashed" else "solid"})
                         for c in data.columns])
    fig.update_layout(title=chart.title, xaxis_title=chart.xlabel, yaxis_title=chart.ylabel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
