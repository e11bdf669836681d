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
