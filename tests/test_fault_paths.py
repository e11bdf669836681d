"""The loss paths of issue 14 that sit before the loader, each injected: an HTML page served with
200, a stall longer than the client's timeout, a body cut mid-transfer, zip bombs, remote names
that would leave the stage, secrets in 4xx bodies, credentials sent to other hosts."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime

import pytest
import requests

from pmp import http, payload
from pmp.payload import HtmlPayloadError, PayloadError, iter_members, validate
from pmp.simulator.server import MAINTENANCE_PAGE, start_simulator
from pmp.staging import FileStore, raw_key

NYISO_CSV = "/nyiso/mis/public/csv/realtime/20241105realtime_zone.csv"


@pytest.fixture
def sim():
    with start_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC)) as handle:
        yield handle


def _get(sim, path: str, **kw) -> requests.Response:
    return http.request(requests.Session(), "GET", sim.url + path, pacer=http.Pacer(None), what="test",
                        sleep=lambda s: None, **kw)


def test_html_page_served_with_200_is_refused_before_staging(sim) -> None:
    sim.set_faults({"html_200": 1})
    resp = _get(sim, NYISO_CSV)
    assert resp.status_code == 200 and resp.content == MAINTENANCE_PAGE
    with pytest.raises(HtmlPayloadError, match=r"20241105realtime_zone.csv: the ISO answered with an HTML page "
                                               r"\('Site Maintenance'\)"):
        validate("20241105realtime_zone.csv", resp.content)
    validate("P-2Alist.htm", resp.content)  # a page that is an HTML page is fine
    assert validate("x.csv", _get(sim, NYISO_CSV).content) is None  # the next try is the file


def test_stall_longer_than_the_timeout_is_retried(sim) -> None:
    """The stall never answers (it is not a short sleep): the read timeout ends it and the retry succeeds."""
    sim.set_faults({"stall": 1})
    resp = _get(sim, NYISO_CSV, timeout=1)
    assert resp.status_code == 200 and resp.content.startswith(b'"Time Stamp"')
    sim.set_faults({"stall": -1})
    with pytest.raises(http.IsoHttpError, match=r"giving up after 2 attempts .* \(last: ReadTimeout\)"):
        _get(sim, NYISO_CSV, timeout=0.5, max_attempts=2)
    sim.set_faults({"stall": 0})


def test_body_cut_mid_transfer_is_retried(sim) -> None:
    sim.set_faults({"cut_body": 1})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(sim.url + NYISO_CSV, timeout=10)  # what the hook saw before: not retried
    sim.set_faults({"cut_body": 1})
    full = _get(sim, NYISO_CSV)
    assert full.content == requests.get(sim.url + NYISO_CSV, timeout=10).content
    assert sim.sim.faults["cut_body"] == 0


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_bombs_are_refused_before_decompressing(monkeypatch) -> None:
    bomb = _zip({"a.csv": b"\0" * (64 * 2**20)})  # 64 MiB of zeros: ~1000:1
    with pytest.raises(PayloadError, match=r"bomb.zip!a.csv: compressed \d+:1, above the limit of 200:1"):
        validate("bomb.zip", bomb)
    with pytest.raises(PayloadError, match="above the limit of 200:1"):
        list(iter_members("bomb.zip", bomb))
    monkeypatch.setattr(payload, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(PayloadError, match=r"big.zip!b.csv: declares 2000 bytes uncompressed, above the limit"):
        validate("big.zip", _zip({"b.csv": b"x" * 2000}, zipfile.ZIP_STORED))
    monkeypatch.setattr(payload, "MAX_MEMBER_BYTES", 4 * 2**30)
    nested = _zip({"d.csv": b"1,2\n"})
    for level in range(5):
        nested = _zip({f"l{level}.zip": nested})
    with pytest.raises(PayloadError, match=r"zips nested deeper than 4 levels"):
        validate("deep.zip", nested)
    with pytest.raises(PayloadError, match=r"zips nested deeper than 4 levels"):
        list(iter_members("deep.zip", nested))
    monkeypatch.setattr(payload, "MAX_TOTAL_BYTES", 3000)
    many = _zip({f"z{i}.zip": _zip({"m.csv": b"y" * 1000}, zipfile.ZIP_STORED) for i in range(4)}, zipfile.ZIP_STORED)
    with pytest.raises(PayloadError, match=r"more than 3000 bytes uncompressed in all"):
        validate("many.zip", many)


def test_corrupt_nested_member_is_named() -> None:
    inner = bytearray(_zip({"x.csv": b"a,b\n" * 100}, zipfile.ZIP_STORED))
    inner[inner.index(b"a,b") + 5] ^= 1  # a flipped byte: CRC mismatch
    with pytest.raises(PayloadError, match=r"outer.zip!in.zip!x.csv: corrupt zip member"):
        validate("outer.zip", _zip({"in.zip": bytes(inner)}, zipfile.ZIP_STORED))


def test_remote_names_cannot_leave_the_stage(tmp_path) -> None:
    key = raw_key("ercot", "lmp_dam", date(2024, 11, 3), "../../../../escape.csv")
    assert key == "raw/ercot/lmp_dam/2024/11/03/__.._.._.._escape.csv"
    assert raw_key("ercot", "d", date(2024, 1, 1), "..") == "raw/ercot/d/2024/01/01/_"
    assert raw_key("ercot", "d", date(2024, 1, 1), "cdr.00012300.0000000000000000.20241103.csv").endswith(
        "/cdr.00012300.0000000000000000.20241103.csv")  # ordinary names unchanged
    store = FileStore(f"file://{tmp_path}/stage")
    store.put(key, b"x", immutable=True)
    assert not (tmp_path / "escape.csv").exists() and store.get(key) == b"x"
    with pytest.raises(ValueError, match="leaves the stage"):
        store.put("raw/../../escape.csv", b"x", immutable=True)


class _Resp(requests.Response):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.status_code, self._content, self.encoding = status, body, "utf-8"


def test_4xx_body_in_errors_is_a_short_snippet_without_secrets(monkeypatch) -> None:
    from pmp.connections import mask

    mask("hunter2-the-password")
    body = (b"<html><script>var k='x'</script><body>Invalid request: subscription-key=abcd1234efgh5678 token: "
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig see https://api.example.org/x?key=SECRETQ "
            b"user hunter2-the-password " + b"padding " * 50 + b"</body></html>")
    text = http.safe_snippet(_Resp(400, body))
    assert len(text) <= http.SNIPPET_CHARS + 1
    for secret in ("abcd1234efgh5678", "eyJhbGci", "SECRETQ", "hunter2", "<", "var k"):
        assert secret not in text, text
    assert text.startswith("Invalid request: subscription-key=***")


def test_basic_auth_only_to_its_own_host(sim) -> None:
    """A listing page's absolute link to another host gets no credentials (before: session.auth
    sent them everywhere)."""
    other = start_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    try:
        session = requests.Session()
        session.auth = http.HostBoundBasicAuth("mirror-user", "mirror-pass", sim.url + "/nyiso/mis")
        own = session.get(sim.url + NYISO_CSV, timeout=10).request.headers.get("Authorization")
        foreign = session.get(other.url + NYISO_CSV, timeout=10).request.headers.get("Authorization")
    finally:
        other.stop()
    assert own and own.startswith("Basic ") and foreign is None


def test_pg_dsn_and_webhook_url_are_masked(monkeypatch) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    from pmp.connections import mask_url, postgres_connection

    monkeypatch.setenv("PMP_PG_DSN", "host=127.0.0.1 port=1 dbname=x user=u password=s3cr3t-dsn-pw connect_timeout=1")
    with pytest.raises(Exception):  # noqa: B017 - a closed loopback port: only the masking matters
        postgres_connection("pmp_no_such_connection")
    assert "s3cr3t-dsn-pw" not in str(redact("login failed for password s3cr3t-dsn-pw"))
    mask_url("https://hooks.example.org/services/T000/B000/XXXXtokenXXXX")
    assert "XXXXtokenXXXX" not in str(redact("posting to /services/T000/B000/XXXXtokenXXXX failed"))
