"""Raw payload handling shared by every ISO: plain files, zips and zips of zips (any depth)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator


class PayloadError(ValueError):
    """A raw payload that cannot be read. The message names the file (and member)."""


def is_zip(payload: bytes) -> bool:
    return payload[:4] == b"PK\x03\x04" or payload[:4] == b"PK\x05\x06"


def iter_members(name: str, payload: bytes, suffixes: tuple[str, ...] = (".csv",)) -> Iterator[tuple[str, bytes]]:
    """Yield ``(path, bytes)`` of every member with one of ``suffixes``, descending into nested zips.

    ``path`` is ``outer.zip!inner.zip!file.csv`` so an error can name exactly where it is.
    A payload that is not a zip is yielded as is.
    """
    if not is_zip(payload):
        yield name, payload
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise PayloadError(f"{name}: corrupt zip ({exc})") from exc
    for info in members:
        if info.is_dir():
            continue
        path = f"{name}!{info.filename}"
        try:
            data = archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise PayloadError(f"{path}: corrupt zip member ({exc})") from exc
        lower = info.filename.lower()
        if is_zip(data) or lower.endswith(".zip"):
            yield from iter_members(path, data, suffixes)
        elif lower.endswith(suffixes):
            yield path, data


def validate(name: str, payload: bytes) -> None:
    """Reject a payload that is not what it claims to be before it is written to the raw stage
    (raw files are immutable, so a truncated download must never land there)."""
    if not payload:
        raise PayloadError(f"{name}: empty payload")
    if name.lower().endswith(".zip") and not is_zip(payload):
        raise PayloadError(f"{name}: expected a zip, got {payload[:40]!r}")
    if is_zip(payload):
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise PayloadError(f"{name}: corrupt zip ({exc})") from exc
        if bad:
            raise PayloadError(f"{name}!{bad}: corrupt zip member (CRC mismatch)")


def leaf_name(path: str) -> str:
    """The innermost file name of a member path (``a.zip!b.zip!c.csv`` -> ``c.csv``)."""
    return path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
