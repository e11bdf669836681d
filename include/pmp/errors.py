"""Errors shared by every ISO's normalizer."""

from __future__ import annotations


class NormalizeError(ValueError):
    """Bad input: names the file, the line (1-based, header = line 1) and the field.

    ``file`` is the member path inside nested archives (``outer.zip!inner.csv``), so the message
    says exactly where to look; nothing of the file is loaded when this is raised.
    """

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        where = file + (f", line {line}" if line else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")
        self.file, self.line, self.field = file, line, field


def utf8_text(path: str, data: bytes) -> str:
    """A published text file as text: UTF-8, with or without a byte-order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NormalizeError(path, None, None, f"not UTF-8 text ({exc})") from exc
