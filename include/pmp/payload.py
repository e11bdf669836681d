"""Raw payload handling shared by every ISO: plain files, zips and zips of zips.

Every payload passes :func:`validate` before it is written to the raw stage (``pipeline.fetch``),
and every zip is opened through :func:`open_zip`, so the limits below hold for every ISO: a zip
whose members declare more than :data:`MAX_MEMBER_BYTES` (or :data:`MAX_TOTAL_BYTES` over the whole
nested tree), that compress more than :data:`MAX_RATIO` to one, or that nest deeper than
:data:`MAX_DEPTH` zips is an error before anything is decompressed (``zipfile`` never writes more
than a member declares, so the declared sizes bound the work). An HTML page served with status 200
instead of the document (an ISO's maintenance or error page) is an error too: nothing is staged and
the task's retry downloads again, instead of every retry re-reading the same bad raw file."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator

from pmp.validate import redact_url


class PayloadError(ValueError):
    """A raw payload that cannot be read. The message names the file (and member)."""


class HtmlPayloadError(PayloadError):
    """An HTML page where a data file was expected (served with 200): retry the download."""


# Far above every real ISO archive (ERCOT's yearly zips of 35,040 interval zips hold ~2 GB), far
# below what a zip bomb declares.
MAX_MEMBER_BYTES = 4 * 2**30
MAX_TOTAL_BYTES = 16 * 2**30
MAX_RATIO = 200  # uncompressed / compressed, for members above RATIO_MIN_BYTES (CSV: 5-30x)
RATIO_MIN_BYTES = 16 * 2**20
MAX_DEPTH = 4  # zips inside zips (ERCOT's history archives: 2)


class _Budget:
    """Uncompressed bytes left for one payload's whole tree of nested zips."""

    def __init__(self) -> None:
        self.left = MAX_TOTAL_BYTES


def open_zip(name: str, payload: bytes, *, depth: int = 1, budget: _Budget | None = None) -> zipfile.ZipFile:
    """``payload`` as a zip whose declared sizes are within the limits (:class:`PayloadError` naming
    the member otherwise, before anything is decompressed)."""
    if depth > MAX_DEPTH:
        raise PayloadError(f"{name}: zips nested deeper than {MAX_DEPTH} levels: refused (a zip bomb?)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise PayloadError(f"{name}: corrupt zip ({exc})") from exc
    budget = budget or _Budget()
    for info in members:
        path = f"{name}!{info.filename}"
        if info.file_size > MAX_MEMBER_BYTES:
            raise PayloadError(f"{path}: declares {info.file_size} bytes uncompressed, above the limit of "
                               f"{MAX_MEMBER_BYTES}: refused (a zip bomb?)")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise PayloadError(f"{path}: compressed {info.file_size // max(info.compress_size, 1)}:1, above the "
                               f"limit of {MAX_RATIO}:1: refused (a zip bomb?)")
        budget.left -= info.file_size
        if budget.left < 0:
            raise PayloadError(f"{name}: its zips declare more than {MAX_TOTAL_BYTES} bytes uncompressed in all: "
                               "refused (a zip bomb?)")
    return archive


def is_zip(payload: bytes) -> bool:
    return payload[:4] == b"PK\x03\x04" or payload[:4] == b"PK\x05\x06"


def iter_members(name: str, payload: bytes, suffixes: tuple[str, ...] = (".csv",), *, _depth: int = 1,
                 _budget: _Budget | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(path, bytes)`` of every member with one of ``suffixes``, descending into nested zips
    (within the limits of :func:`open_zip`).

    ``path`` is ``outer.zip!inner.zip!file.csv`` so an error can name exactly where it is.
    A payload that is not a zip is yielded as is.
    """
    if not is_zip(payload):
        yield name, payload
        return
    budget = _budget or _Budget()
    archive = open_zip(name, payload, depth=_depth, budget=budget)
    for info in archive.infolist():
        if info.is_dir():
            continue
        path = f"{name}!{info.filename}"
        try:
            data = archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise PayloadError(f"{path}: corrupt zip member ({exc})") from exc
        lower = info.filename.lower()
        if is_zip(data) or lower.endswith(".zip"):
            yield from iter_members(path, data, suffixes, _depth=_depth + 1, _budget=budget)
        elif lower.endswith(suffixes):
            yield path, data


_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


def html_title(payload: bytes) -> str | None:
    """The page's title (or ``"untitled"``) when ``payload`` is an HTML page, else None."""
    head = payload[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.lower().startswith(_HTML_STARTS):
        return None
    m = re.search(rb"(?i)<title[^>]*>([^<]{0,80})", head)
    return " ".join(m.group(1).decode("ascii", "replace").split()) if m else "untitled"


def validate(name: str, payload: bytes, *, url: str | None = None) -> None:
    """Reject a payload that is not what it claims to be before it is written to the raw stage
    (raw files are immutable, so a truncated download or an error page must never land there).
    ``url``: where it was downloaded (named in the error, without query string or credentials)."""
    where = f" (from {redact_url(url)})" if url else ""
    if not payload:
        raise PayloadError(f"{name}{where}: empty payload")
    title = None if name.lower().endswith((".html", ".htm")) else html_title(payload)
    if title is not None:
        raise HtmlPayloadError(f"{name}{where}: the ISO answered with an HTML page ({title!r}) instead of the file; "
                               "nothing was staged, a retry downloads it again")
    if name.lower().endswith(".zip") and not is_zip(payload):
        raise PayloadError(f"{name}: expected a zip, got {payload[:40]!r}")
    if is_zip(payload):
        _check_zip(name, payload, 1, _Budget())


def _check_zip(name: str, payload: bytes, depth: int, budget: _Budget) -> None:
    """Every member readable with a correct CRC, nested zips (``.zip`` members) too, within the limits."""
    with open_zip(name, payload, depth=depth, budget=budget) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            path = f"{name}!{info.filename}"
            nested = info.filename.lower().endswith(".zip")
            try:
                with zf.open(info) as fh:
                    if nested:
                        data = fh.read()
                    else:
                        while fh.read(1 << 20):
                            pass
            except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
                raise PayloadError(f"{path}: corrupt zip member ({exc})") from exc
            if nested:
                if not is_zip(data):
                    raise PayloadError(f"{path}: expected a zip, got {data[:40]!r}")
                _check_zip(path, data, depth + 1, budget)


def leaf_name(path: str) -> str:
    """The innermost file name of a member path (``a.zip!b.zip!c.csv`` -> ``c.csv``)."""
    return path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
