"""A small reader for legacy Excel ``.xls`` workbooks (BIFF8 in an OLE2 compound file).

MISO publishes its daily forecasted-and-actual load report (``YYYYMMDD_df_al.xls``) in this old
binary format. No reader of it is among the platform's pinned packages (openpyxl reads ``.xlsx``
only), and the report needs very little of the format: the first worksheet's cell values. So this
module reads just that, with errors that name the file:

* OLE2 / CFB: header, FAT (incl. DIFAT sectors), directory, the ``Workbook`` stream (regular or
  mini stream);
* BIFF8 records: BOUNDSHEET (first sheet's offset), SST + CONTINUE (shared strings), and the cell
  records LABELSST, LABEL, NUMBER, RK, MULRK, FORMULA (cached number or string), BOOLERR; BLANK
  cells are absent.

``write_xls`` (used by the simulator) writes the same subset, so what it emits reads back here and
in Excel.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pmp.errors import NormalizeError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENDOFCHAIN, FREESECT, FATSECT, DIFSECT = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFC

Cell = str | float | bool | None


def is_xls(data: bytes) -> bool:
    return data[:8] == OLE_MAGIC


# ----------------------------------------------------------------------------- OLE2
def _stream(path: str, data: bytes, name: str) -> bytes:
    if not is_xls(data):
        raise NormalizeError(path, None, None, "not an OLE2 .xls workbook (wrong signature)")
    if len(data) < 512:
        raise NormalizeError(path, None, None, "truncated .xls (no header)")
    sector_shift, mini_shift = struct.unpack_from("<HH", data, 30)
    ssz, msz = 1 << sector_shift, 1 << mini_shift
    n_fat, first_dir, _, mini_cutoff, first_mini_fat, n_mini_fat, first_difat, n_difat = struct.unpack_from(
        "<IIIIIIII", data, 44)

    def sector(i: int) -> bytes:
        off = 512 + i * ssz
        if off + ssz > len(data) + ssz or off >= len(data):
            raise NormalizeError(path, None, None, f"truncated .xls (sector {i} beyond the file)")
        return data[off:off + ssz]

    fat_sectors = list(struct.unpack_from("<109I", data, 76))
    d, seen = first_difat, 0
    while d not in (ENDOFCHAIN, FREESECT) and seen < n_difat:
        words = struct.unpack(f"<{ssz // 4}I", sector(d))
        fat_sectors.extend(words[:-1])
        d, seen = words[-1], seen + 1
    fat: list[int] = []
    for s in fat_sectors[:n_fat]:
        fat.extend(struct.unpack(f"<{ssz // 4}I", sector(s)))

    def chain(start: int, table: list[int]) -> Iterator[int]:
        s, steps = start, 0
        while s not in (ENDOFCHAIN, FREESECT):
            if s >= len(table) or steps > len(table):
                raise NormalizeError(path, None, None, "corrupt .xls (broken sector chain)")
            yield s
            s, steps = table[s], steps + 1

    directory = b"".join(sector(s) for s in chain(first_dir, fat))
    entries = []
    for off in range(0, len(directory), 128):
        e = directory[off:off + 128]
        name_len = struct.unpack_from("<H", e, 64)[0]
        ename = e[:max(0, name_len - 2)].decode("utf-16-le", "replace")
        etype = e[66]
        start, size = struct.unpack_from("<II", e, 116)
        entries.append((ename, etype, start, size))
    if not entries:
        raise NormalizeError(path, None, None, "corrupt .xls (empty directory)")
    root = entries[0]
    for ename, etype, start, size in entries:
        if etype == 2 and ename.lower() in (name.lower(), "book"):
            if size < mini_cutoff:
                mini_fat: list[int] = []
                for s in chain(first_mini_fat, fat):
                    mini_fat.extend(struct.unpack(f"<{ssz // 4}I", sector(s)))
                mini = b"".join(sector(s) for s in chain(root[2], fat))
                out = b"".join(mini[m * msz:(m + 1) * msz] for m in chain(start, mini_fat))
            else:
                out = b"".join(sector(s) for s in chain(start, fat))
            return out[:size]
    raise NormalizeError(path, None, None, f"no {name} stream in the .xls file")


# ----------------------------------------------------------------------------- BIFF8
def _records(stream: bytes) -> Iterator[tuple[int, bytes]]:
    off = 0
    while off + 4 <= len(stream):
        rtype, length = struct.unpack_from("<HH", stream, off)
        yield rtype, stream[off + 4:off + 4 + length]
        off += 4 + length


def _rk(value: int) -> float:
    if value & 2:
        num = float(value >> 2 if not value & 0x80000000 else (value >> 2) - (1 << 30))
    else:
        num = struct.unpack("<d", struct.pack("<Q", (value & 0xFFFFFFFC) << 32))[0]
    return num / 100 if value & 1 else num


class _Reader:
    """Reads BIFF8 unicode strings that may continue across CONTINUE records."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.i, self.pos = chunks, 0, 0

    def _need(self) -> bytes:
        while self.pos >= len(self.chunks[self.i]):
            self.i, self.pos = self.i + 1, 0
            if self.i >= len(self.chunks):
                raise IndexError("SST runs past its records")
        return self.chunks[self.i]

    def take(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._need()
            piece = chunk[self.pos:self.pos + n - len(out)]
            out += piece
            self.pos += len(piece)
        return out

    def string(self) -> str:
        count, flags = struct.unpack("<HB", self.take(3))
        runs = struct.unpack("<H", self.take(2))[0] if flags & 0x08 else 0
        ext = struct.unpack("<I", self.take(4))[0] if flags & 0x04 else 0
        wide, text = bool(flags & 0x01), []
        left = count
        while left:
            chunk = self._need()
            avail = (len(chunk) - self.pos) // (2 if wide else 1)
            n = min(left, avail)
            if n == 0:  # a string split at a record boundary: the next chunk starts with a flags byte
                self.i, self.pos = self.i + 1, 0
                wide = bool(self.take(1)[0] & 0x01)
                continue
            raw = self.take(n * (2 if wide else 1))
            text.append(raw.decode("utf-16-le" if wide else "latin-1"))
            left -= n
            if left and self.pos >= len(self.chunks[self.i]):
                self.i, self.pos = self.i + 1, 0
                wide = bool(self.take(1)[0] & 0x01)
        self.take(runs * 4 + ext)
        return "".join(text)


def _short_string(rec: bytes, off: int) -> str:
    count, flags = struct.unpack_from("<HB", rec, off)
    raw = rec[off + 3:off + 3 + count * (2 if flags & 1 else 1)]
    return raw.decode("utf-16-le" if flags & 1 else "latin-1")


def read_xls(path: str, data: bytes) -> list[list[Cell]]:
    """The first worksheet of an ``.xls`` workbook as rows of cell values (``None`` = empty).

    Numbers are floats (Excel dates stay serial numbers), text is ``str``."""
    stream = _stream(path, data, "Workbook")
    records = list(_records(stream))
    if not records or records[0][0] != 0x0809:
        raise NormalizeError(path, None, None, "not a BIFF8 workbook stream (no BOF)")
    sst: list[str] = []
    sheet_offsets: list[int] = []
    for idx, (rtype, rec) in enumerate(records):
        if rtype == 0x0085:  # BOUNDSHEET
            sheet_offsets.append(struct.unpack_from("<I", rec, 0)[0])
        elif rtype == 0x00FC:  # SST (+ CONTINUE)
            chunks = [rec[8:]]
            for ctype, crec in records[idx + 1:]:
                if ctype != 0x003C:
                    break
                chunks.append(crec)
            unique = struct.unpack_from("<I", rec, 4)[0]
            reader = _Reader(chunks)
            try:
                sst = [reader.string() for _ in range(unique)]
            except (IndexError, struct.error) as exc:
                raise NormalizeError(path, None, None, f"corrupt .xls shared strings ({exc})") from exc
    if not sheet_offsets:
        raise NormalizeError(path, None, None, "no worksheet in the .xls workbook")
    cells: dict[tuple[int, int], Cell] = {}
    pending_string: tuple[int, int] | None = None
    for rtype, rec in _records(stream[sheet_offsets[0]:]):
        try:
            if rtype == 0x000A:  # EOF of the sheet
                break
            if rtype == 0x00FD:  # LABELSST
                r, c, _, i = struct.unpack_from("<HHHI", rec)
                cells[(r, c)] = sst[i]
            elif rtype == 0x0204:  # LABEL
                r, c, _ = struct.unpack_from("<HHH", rec)
                cells[(r, c)] = _short_string(rec, 6)
            elif rtype == 0x0203:  # NUMBER
                r, c, _, v = struct.unpack_from("<HHHd", rec)
                cells[(r, c)] = v
            elif rtype == 0x027E:  # RK
                r, c, _, v = struct.unpack_from("<HHHI", rec)
                cells[(r, c)] = _rk(v)
            elif rtype == 0x00BD:  # MULRK
                r, c = struct.unpack_from("<HH", rec)
                n = (len(rec) - 6) // 6
                for k in range(n):
                    v = struct.unpack_from("<I", rec, 4 + k * 6 + 2)[0]
                    cells[(r, c + k)] = _rk(v)
            elif rtype == 0x0006:  # FORMULA: the cached result
                r, c = struct.unpack_from("<HH", rec)
                result = rec[6:14]
                if result[6:8] == b"\xff\xff":
                    if result[0] == 0:  # a string: it follows in a STRING record
                        pending_string = (r, c)
                    elif result[0] == 1:
                        cells[(r, c)] = bool(result[2])
                else:
                    cells[(r, c)] = struct.unpack("<d", result)[0]
            elif rtype == 0x0207 and pending_string is not None:  # STRING (a formula's text)
                cells[pending_string] = _short_string(rec, 0)
                pending_string = None
            elif rtype == 0x0205:  # BOOLERR
                r, c, _, v, is_err = struct.unpack_from("<HHHBB", rec)
                if not is_err:
                    cells[(r, c)] = bool(v)
        except (IndexError, struct.error) as exc:
            raise NormalizeError(path, None, None, f"corrupt .xls cell record 0x{rtype:04X} ({exc})") from exc
    if not cells:
        return []
    nrows = max(r for r, _ in cells) + 1
    ncols = max(c for _, c in cells) + 1
    return [[cells.get((r, c)) for c in range(ncols)] for r in range(nrows)]


# ----------------------------------------------------------------------------- writer
def _rec(rtype: int, body: bytes) -> bytes:
    return struct.pack("<HH", rtype, len(body)) + body


def _unicode(text: str) -> bytes:
    try:
        raw, flag = text.encode("latin-1"), 0
    except UnicodeEncodeError:
        raw, flag = text.encode("utf-16-le"), 1
    return struct.pack("<HB", len(text), flag) + raw


def write_xls(rows: list[list[Cell]], sheet: str = "Sheet1") -> bytes:
    """A one-sheet BIFF8 workbook in an OLE2 file: text as shared strings, numbers as NUMBER."""
    strings: dict[str, int] = {}
    cell_recs = []
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, str):
                i = strings.setdefault(v, len(strings))
                cell_recs.append(_rec(0x00FD, struct.pack("<HHHI", r, c, 15, i)))
            elif isinstance(v, bool):
                cell_recs.append(_rec(0x0205, struct.pack("<HHHBB", r, c, 15, int(v), 0)))
            else:
                cell_recs.append(_rec(0x0203, struct.pack("<HHHd", r, c, 15, float(v))))
    total = sum(1 for row in rows for v in row if isinstance(v, str))
    sst_body = struct.pack("<II", total, len(strings)) + b"".join(_unicode(s) for s in strings)
    sst_parts = [sst_body[:8224]]
    rest = sst_body[8224:]
    if rest:  # keep it simple: split only between strings
        sst_parts, chunk = [], struct.pack("<II", total, len(strings))
        for s in strings:
            u = _unicode(s)
            if len(chunk) + len(u) > 8224:
                sst_parts.append(chunk)
                chunk = b""
            chunk += u
        sst_parts.append(chunk)
    sst = _rec(0x00FC, sst_parts[0]) + b"".join(_rec(0x003C, p) for p in sst_parts[1:])
    bof_globals = _rec(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x06))
    bof_sheet = _rec(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 0x06))
    ncols = max((len(r) for r in rows), default=0)
    dims = _rec(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, ncols, 0))
    sheet_name = struct.pack("<BB", len(sheet), 0) + sheet.encode("latin-1")
    boundsheet_len = 4 + 4 + 2 + len(sheet_name)
    globals_len = len(bof_globals) + boundsheet_len + len(sst) + 4
    boundsheet = _rec(0x0085, struct.pack("<IBB", globals_len, 0, 0) + sheet_name)
    stream = (bof_globals + boundsheet + sst + _rec(0x000A, b"") + bof_sheet + dims + b"".join(cell_recs)
              + _rec(0x000A, b""))
    return _ole([("Workbook", stream)])


def _ole(streams: list[tuple[str, bytes]]) -> bytes:
    """An OLE2 compound file (512-byte sectors, no mini stream: streams are padded to 4096 bytes)."""
    ssz = 512
    body, entries, next_sector = b"", [], 0
    chains: list[tuple[int, int]] = []
    for name, data in streams:
        data = data + b"\x00" * max(0, 4096 - len(data))
        n = -(-len(data) // ssz)
        chains.append((next_sector, n))
        entries.append((name, next_sector, len(data)))
        body += data.ljust(n * ssz, b"\x00")
        next_sector += n
    dir_sector = next_sector
    next_sector += 1
    n_data = next_sector
    n_fat = 1
    while n_fat * (ssz // 4) < n_data + n_fat:
        n_fat += 1
    fat = [FREESECT] * (n_fat * (ssz // 4))
    for start, n in chains:
        for k in range(n):
            fat[start + k] = start + k + 1 if k < n - 1 else ENDOFCHAIN
    fat[dir_sector] = ENDOFCHAIN
    for k in range(n_fat):
        fat[n_data + k] = FATSECT

    def entry(name: str, etype: int, start: int, size: int, child: int = FREESECT) -> bytes:
        raw = name.encode("utf-16-le") + b"\x00\x00"
        return (raw.ljust(64, b"\x00") + struct.pack("<HBB", len(raw), etype, 1)
                + struct.pack("<III", FREESECT, FREESECT, child) + b"\x00" * 16 + b"\x00" * 4 + b"\x00" * 16
                + struct.pack("<III", start, size, 0))

    directory = entry("Root Entry", 5, ENDOFCHAIN, 0, child=1)
    for name, start, size in entries:
        directory += entry(name, 2, start, size)
    directory = directory.ljust(ssz, b"\x00")
    difat = [n_data + k for k in range(n_fat)] + [FREESECT] * (109 - n_fat)
    header = (OLE_MAGIC + b"\x00" * 16 + struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6) + b"\x00" * 6
              + struct.pack("<IIIIIIIII", 0, n_fat, dir_sector, 0, 4096, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
              + struct.pack("<109I", *difat))
    return header + body + directory + struct.pack(f"<{len(fat)}I", *fat)
