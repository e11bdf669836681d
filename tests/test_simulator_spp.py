"""The SPP simulator speaks the shapes of the real files in tests/samples/spp: for each sample, the
simulator's file of the same path and time has the same header byte for byte, the same line endings,
the same row shapes (field kinds, 4-decimal prices), the same stamps and the same row order; the
gen-mix chart has the sample's JSON structure; an unknown file is SPP's 404 with an empty body."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import requests
from helpers import samples_dir

from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("spp")
PORTAL = "/spp/portal"
STAMP = re.compile(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d")
PRICE = re.compile(r"-?\d+\.\d{4}")


def sample_bytes(part: str) -> bytes:
    return next(p for p in SAMPLES.iterdir() if part in p.name).read_bytes()


def fetch(now: datetime, folder: str, path: str) -> requests.Response:
    with start_simulator(now=now) as sim:
        return requests.get(f"{sim.url}{PORTAL}/file-browser-api/download/{folder}", params={"path": path},
                            timeout=60)


def kind(cell: str) -> str:
    """A field's kind, its value abstracted away: stamp, 4-decimal price, integer or text."""
    if STAMP.fullmatch(cell):
        return "T"
    if PRICE.fullmatch(cell):
        return "P"
    return "I" if cell.isdigit() else "S"


def table(data: bytes) -> tuple[str, list[list[str]]]:
    text = data.decode()
    assert "\r" not in text and text.endswith("\n")  # LF line endings, a final newline, as SPP writes them
    header, *lines = text.removesuffix("\n").split("\n")
    return header, [line.split(",") for line in lines]


def assert_like(real: bytes, simulated: bytes, key: slice) -> tuple[list[list[str]], list[list[str]]]:
    real_header, real_rows = table(real)
    sim_header, sim_rows = table(simulated)
    assert sim_header == real_header  # the same columns, spelling and spaces
    assert {tuple(map(kind, r)) for r in sim_rows} == {tuple(map(kind, r)) for r in real_rows}
    # the same stamps (local interval-ending label, GMT interval end), in the same order
    assert sorted({tuple(r[key]) for r in sim_rows}) == sorted({tuple(r[key]) for r in real_rows})
    gmt = [datetime.strptime(r[key][1], "%m/%d/%Y %H:%M:%S") for r in sim_rows]
    assert gmt == sorted(gmt)  # interval by interval
    return real_rows, sim_rows


def name_sorted(rows: list[list[str]], col: int) -> bool:
    """Within each interval the rows are sorted by this column (the real full files' order)."""
    by_interval: dict[str, list[str]] = {}
    for r in rows:
        by_interval.setdefault(r[1], []).append(r[col])
    return all(v == sorted(v) for v in by_interval.values())


@pytest.mark.parametrize(("part", "now", "path", "loc"), [
    ("DA-LMP-SL-202503190100", datetime(2025, 3, 19, 18, tzinfo=UTC), "/2025/03/By_Day/DA-LMP-SL-202503190100.csv", 2),
    ("RTBM-LMP-SL-202503310840", datetime(2025, 3, 31, 14, tzinfo=UTC),
     "/2025/03/By_Interval/31/RTBM-LMP-SL-202503310840.csv", 2),
    ("spp_da_lmp_sl_20261004", datetime(2026, 10, 4, 18, tzinfo=UTC), "/2026/10/By_Day/DA-LMP-SL-202610040100.csv", 3),
], ids=["da-2025", "rtbm-2025", "da-2026-baa"])
def test_lmp_files_are_shaped_like_the_samples(part: str, now: datetime, path: str, loc: int) -> None:
    folder = "rtbm-lmp-by-location" if "RTBM" in part else "da-lmp-by-settlement-location"
    r = fetch(now, folder, path)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv"
    real_rows, sim_rows = assert_like(sample_bytes(part), r.content, slice(0, 2))
    assert name_sorted(sim_rows, loc) and (loc == 3 or name_sorted(real_rows, loc))  # 2026 sample: author-trimmed
    if loc == 3:  # the BAA column: SPP and RTO West (SWPW) locations
        assert {row[2] for row in sim_rows} == {row[2] for row in real_rows} == {"SPP", "SWPW"}
    for row in sim_rows:  # LMP = MLC + MCC + MEC to the published 4 decimals, as in every real row
        lmp, mlc, mcc, mec = (round(float(x) * 10_000) for x in row[-4:])
        assert lmp == mlc + mcc + mec


def test_rtbm_mcp_latest_interval_is_shaped_like_the_sample() -> None:
    real = sample_bytes("rtbm-mcp-latest-interval")
    # the sample was captured with the 16:25 CDT interval's prices posted (about 5 minutes early)
    r = fetch(datetime(2026, 7, 27, 21, 21, 30, tzinfo=UTC), "rtbm-mcp", "/RTBM-MCP-latestInterval.csv")
    assert r.status_code == 200 and "Last-Modified" in r.headers
    real_rows, sim_rows = assert_like(real, r.content, slice(0, 2))
    assert [row[2] for row in sim_rows] == [row[2] for row in real_rows] == ["1", "2", "21", "3", "4", "5", "SPP",
                                                                             "SWPW"]
    assert [row[-1] for row in sim_rows] == [row[-1] for row in real_rows]  # the BAA of each zone
    by_interval = fetch(datetime(2026, 7, 27, 21, 30, tzinfo=UTC), "rtbm-mcp",
                        "/2026/07/By_Interval/27/RTBM-MCP-202607271625.csv")
    assert by_interval.content == r.content  # the latest file is that interval's file


def test_gen_mix_chart_is_shaped_like_the_sample() -> None:
    real = json.loads(sample_bytes("spp-chart-api-gen-mix"))
    with start_simulator(now=datetime(2026, 7, 27, 21, 21, 30, tzinfo=UTC)) as sim:
        r = requests.get(f"{sim.url}{PORTAL}/chart-api/gen-mix/asChart", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    got = json.loads(r.content)
    assert got.keys() == real.keys() and got["response"].keys() == real["response"].keys()
    assert got["pieLabels"] == real["pieLabels"] and got["pieColors"] == real["pieColors"]
    assert got["response"]["labels"] == real["response"]["labels"]  # 24 UTC interval ends, the same two hours
    assert [d["label"] for d in got["response"]["datasets"]] == [d["label"] for d in real["response"]["datasets"]]
    for g, x in zip(got["response"]["datasets"], real["response"]["datasets"], strict=True):
        assert {k: v for k, v in g.items() if k != "data"} == {k: v for k, v in x.items() if k != "data"}
        assert len(g["data"]) == len(x["data"]) and all(isinstance(v, int | float) for v in g["data"])
    modified = got["response"]["lastModifiedDate"]
    assert isinstance(modified, int) and modified - 28_000 == int(
        datetime.fromisoformat(got["response"]["labels"][-1]).timestamp() * 1000)  # 28 s after the last label
    for raw, doc in ((sample_bytes("spp-chart-api-gen-mix"), real), (r.content, got)):  # compact JSON, key order
        assert json.dumps(doc, separators=(",", ":")).encode() == raw.strip()


def test_unknown_files_are_404_with_an_empty_body_like_the_sample() -> None:
    assert sample_bytes("TieFlows_SWPW_Feb2025") == b""  # what SPP answered for a file it does not have
    now = datetime(2025, 3, 31, 14, tzinfo=UTC)
    for folder, path in (("historical-tie-flow", "/TieFlows_SWPW_Feb2025.csv"),
                         ("rtbm-lmp-by-location", "/2025/03/By_Interval/31/RTBM-LMP-SL-202503310905d.csv"),
                         ("da-lmp-by-settlement-location", "/2025/03/By_Day/DA-LMP-SL-20250319.csv")):
        r = fetch(now, folder, path)
        assert (r.status_code, r.content) == (404, b""), path
