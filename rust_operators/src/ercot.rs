//! ERCOT price layouts -> `lmp` rows, with the rules of `pmp/isos/ercot/normalize.py`.
//!
//! * `lmp_dam` (NP4-190-CD): `DeliveryDate, HourEnding (01:00..24:00), SettlementPoint, Price, DSTFlag`.
//! * `lmp_rt15m` (NP6-905-CD): `DeliveryDate, DeliveryHour, DeliveryInterval (1..4), Name, Type, Price, DSTFlag`.
//! * `lmp_rt5m` (NP6-788-CD): `SCEDTimestamp, RepeatedHourFlag, SettlementPoint, LMP`; the interval is
//!   the SCED run time floored to 5 minutes.
//!
//! ERCOT quirks, each in one place: the repeated fall-back hour is flagged on its *second* copy
//! ([`parse_flag`]); some files number the fall-back day 1..25 ([`rewrite_25_hour_days`]); load
//! zones are published twice, as `LZ` and energy-weighted `LZEW` ([`push_location`]); the posting
//! time is encoded in the constructed file name, `xhr` marking the repeated hour ([`published_from_name`]).
//! A document holds one row per location and interval ([`reject_duplicates`]): two rows on one key
//! mean a repeated hour without a flag column, or a corrupt file, and are an error.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use crate::columns::{Col, Header};
use crate::csvread::{for_each_record, Record};
use crate::error::{BulkError, Place, Result};
use arrow_array::RecordBatch;

use crate::table::{FileConstants, LmpRows};
use crate::timeconv::{floor_minutes, hour_ending_start, localize, MICROS};

/// ERCOT publishes Central prevailing time everywhere.
pub const TZ: Tz = chrono_tz::America::Chicago;

/// The ERCOT datasets this processor knows (ids as in the dataset registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    LmpDam,
    LmpRt15m,
    LmpRt5m,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::LmpDam, Dataset::LmpRt15m, Dataset::LmpRt5m];

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.id() == id)
    }

    pub fn id(self) -> &'static str {
        match self {
            Dataset::LmpDam => "lmp_dam",
            Dataset::LmpRt15m => "lmp_rt15m",
            Dataset::LmpRt5m => "lmp_rt5m",
        }
    }

    pub fn market(self) -> &'static str {
        match self {
            Dataset::LmpDam => "DAM",
            Dataset::LmpRt15m => "RT15M",
            Dataset::LmpRt5m => "RT5M",
        }
    }

    fn minutes(self) -> i64 {
        match self {
            Dataset::LmpDam => 60,
            Dataset::LmpRt15m => 15,
            Dataset::LmpRt5m => 5,
        }
    }

    fn required(self) -> &'static [Col] {
        match self {
            Dataset::LmpDam => &[Col::DeliveryDate, Col::HourEnding, Col::Location, Col::Price],
            Dataset::LmpRt15m => {
                &[Col::DeliveryDate, Col::DeliveryHour, Col::DeliveryInterval, Col::Location, Col::Price]
            }
            Dataset::LmpRt5m => &[Col::ScedTimestamp, Col::Location, Col::Price],
        }
    }
}

/// One file's rows plus what was rejected (only when not strict).
#[derive(Debug, Default)]
pub struct Parsed {
    /// The file's rows in the `lmp` columns (see [`crate::table::lmp_batch_schema`]).
    pub batch: Option<RecordBatch>,
    /// The `source` value of the rows: the CSV's file name.
    pub source: String,
    pub rejected: usize,
    pub errors: Vec<BulkError>,
}

impl Parsed {
    pub fn rows(&self) -> usize {
        self.batch.as_ref().map_or(0, RecordBatch::num_rows)
    }
}

/// A row's local time label before it is placed on the UTC timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    /// (market day, hour ending 1..25, repeated flag, 15-minute interval 1..4 or 1 for hourly)
    HourEnding(NaiveDate, u8, bool, u8),
    /// SCED run start, already in UTC microseconds.
    Instant(i64),
}

/// The last distinct labels seen in a file (rows repeat them for every location).
#[derive(Default)]
struct Memo {
    date: Option<(Vec<u8>, NaiveDate)>,
    sced: Option<(Vec<u8>, bool, i64)>,
}

struct Row<'a> {
    label: Label,
    location: &'a [u8],
    location_type: Option<&'a [u8]>,
    price: f64,
}

/// Parse one ERCOT CSV into `lmp` rows. `published_at` overrides the time in the file name.
pub fn parse_file(
    dataset: Dataset,
    place: &Place<'_>,
    data: &[u8],
    published_at: Option<i64>,
    strict: bool,
) -> Result<Parsed> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let text = std::str::from_utf8(data)
        .map_err(|e| BulkError::at(place, None, None, format!("not UTF-8 text ({e})")))?;
    if text.trim().is_empty() {
        return Err(BulkError::at(place, None, None, "empty file"));
    }
    let mut out = Parsed::default();
    let mut header: Option<(Header, Cols, usize)> = None;
    // rows are about 40 bytes: size the columns once
    let estimate = data.len() / 40 + 1;
    let mut labels: Vec<(Label, u64)> = Vec::with_capacity(estimate);
    let mut memo = Memo::default();
    let mut rows = LmpRows::with_capacity(estimate, data.len() / 3);
    for_each_record(data, |record| {
        let Some((header, cols, width)) = &header else {
            let fields: Vec<String> =
                (0..record.len()).map(|i| String::from_utf8_lossy(record.get(i)).trim().to_string()).collect();
            let h = Header::new(place, &fields, dataset.required())?;
            let cols = Cols::new(&h);
            header = Some((h, cols, fields.len()));
            return Ok(());
        };
        let line = record.line;
        if record.len() != *width {
            let err = format!("malformed CSV: {} fields, the header has {width}", record.len());
            return reject(&mut out, strict, BulkError::at(place, Some(line), None, err));
        }
        match parse_row(dataset, cols, header, place, &record, line, &mut memo) {
            Ok(row) => {
                labels.push((row.label, line));
                push_location(&mut rows, row.location, row.location_type);
                rows.lmp.push(row.price);
                Ok(())
            }
            Err(err) => reject(&mut out, strict, err),
        }
    })?;
    let Some((_, cols, _)) = header else {
        return Err(BulkError::at(place, None, None, "empty file"));
    };
    rewrite_25_hour_days(&mut labels);
    let minutes = dataset.minutes();
    let mut cache: HashMap<Label, i64> = HashMap::new();
    let mut last: Option<(Label, i64)> = None;
    rows.start.reserve(labels.len());
    rows.end.reserve(labels.len());
    let mut lines: Vec<u64> = Vec::with_capacity(labels.len());
    for (label, line) in labels {
        lines.push(line);
        let start = match last {
            Some((l, v)) if l == label => v,
            _ => {
                let v = match cache.get(&label) {
                    Some(v) => *v,
                    None => {
                        let v = place_label(label).map_err(|m| {
                            BulkError::at(place, Some(line), Some(cols.time_field(dataset)), m)
                        })?;
                        cache.insert(label, v);
                        v
                    }
                };
                last = Some((label, v));
                v
            }
        };
        rows.start.push(start);
        rows.end.push(start + minutes * 60 * MICROS);
    }
    reject_duplicates(place, &rows, &lines, cols.time_field(dataset), cols.repeated.is_some())?;
    out.source = place.leaf().to_string();
    out.batch = Some(rows.into_batch(&FileConstants {
        iso: "ERCOT",
        market: dataset.market(),
        published_at: published_at.or_else(|| published_from_name(place)),
        source: &out.source,
    }));
    Ok(out)
}

fn reject(out: &mut Parsed, strict: bool, err: BulkError) -> Result<()> {
    if strict {
        return Err(err);
    }
    out.rejected += 1;
    if out.errors.len() < 20 {
        out.errors.push(err);
    }
    Ok(())
}

/// Column indexes of one file (looked up once).
struct Cols {
    date: Option<usize>,
    hour: Option<usize>,
    interval: Option<usize>,
    repeated: Option<usize>,
    sced: Option<usize>,
    location: usize,
    location_type: Option<usize>,
    price: usize,
}

impl Cols {
    fn new(h: &Header) -> Self {
        Self {
            date: h.get(Col::DeliveryDate),
            hour: h.get(Col::HourEnding).or(h.get(Col::DeliveryHour)),
            interval: h.get(Col::DeliveryInterval),
            repeated: h.get(Col::Repeated),
            sced: h.get(Col::ScedTimestamp),
            location: h.get(Col::Location).unwrap_or(0),
            location_type: h.get(Col::LocationType),
            price: h.get(Col::Price).unwrap_or(0),
        }
    }

    fn time_field(&self, dataset: Dataset) -> &'static str {
        match dataset {
            Dataset::LmpDam => "hour_ending",
            Dataset::LmpRt15m => "delivery_hour",
            Dataset::LmpRt5m => "sced_timestamp",
        }
    }
}

/// A field with surrounding whitespace removed (DAM prices carry a leading space: `, 28.4`).
fn field<'r>(record: &Record<'r>, index: usize) -> &'r [u8] {
    record.get(index).trim_ascii()
}

fn bad(place: &Place<'_>, line: u64, header: &Header, col: Col, message: &str, value: &[u8]) -> BulkError {
    BulkError::at(
        place,
        Some(line),
        Some(header.spelled(col)),
        format!("{message}: '{}'", String::from_utf8_lossy(value)),
    )
}

fn parse_row<'r>(
    dataset: Dataset,
    cols: &Cols,
    header: &Header,
    place: &Place<'_>,
    record: &Record<'r>,
    line: u64,
    memo: &mut Memo,
) -> Result<Row<'r>> {
    let repeated = match cols.repeated {
        Some(i) => parse_flag(field(record, i))
            .ok_or_else(|| bad(place, line, header, Col::Repeated, "flag must be Y or N", field(record, i)))?,
        None => false,
    };
    let label = match dataset {
        Dataset::LmpDam | Dataset::LmpRt15m => {
            let raw_date = field(record, cols.date.unwrap_or(0));
            let date = match &memo.date {
                Some((k, d)) if k.as_slice() == raw_date => *d,
                _ => {
                    let d = parse_date(raw_date).ok_or_else(|| {
                        bad(place, line, header, Col::DeliveryDate, "not a MM/DD/YYYY date", raw_date)
                    })?;
                    memo.date = Some((raw_date.to_vec(), d));
                    d
                }
            };
            let hour_col = if dataset == Dataset::LmpDam { Col::HourEnding } else { Col::DeliveryHour };
            let raw_hour = field(record, cols.hour.unwrap_or(0));
            let he = parse_hour_ending(raw_hour)
                .ok_or_else(|| bad(place, line, header, hour_col, "hour ending must be 01:00..24:00", raw_hour))?;
            let interval = match cols.interval {
                Some(i) if dataset == Dataset::LmpRt15m => {
                    let raw = field(record, i);
                    parse_small_int(raw)
                        .filter(|v| (1..=4).contains(v))
                        .ok_or_else(|| bad(place, line, header, Col::DeliveryInterval, "interval must be 1..4", raw))?
                }
                _ => 1,
            };
            Label::HourEnding(date, he, repeated, interval)
        }
        Dataset::LmpRt5m => {
            let raw = field(record, cols.sced.unwrap_or(0));
            match &memo.sced {
                Some((k, r, v)) if k.as_slice() == raw && *r == repeated => Label::Instant(*v),
                _ => {
                    let naive = parse_timestamp(raw).ok_or_else(|| {
                        bad(place, line, header, Col::ScedTimestamp, "not a MM/DD/YYYY HH:MM:SS timestamp", raw)
                    })?;
                    let start = localize(TZ, naive, repeated)
                        .map(|t| floor_minutes(t, 5))
                        .map_err(|e| BulkError::at(place, Some(line), Some("sced_timestamp"), e.to_string()))?;
                    memo.sced = Some((raw.to_vec(), repeated, start));
                    Label::Instant(start)
                }
            }
        }
    };
    let raw_price = field(record, cols.price);
    let price = parse_price(raw_price).map_err(|m| bad(place, line, header, Col::Price, m, raw_price))?;
    let location = field(record, cols.location);
    let location_type = cols.location_type.map(|i| field(record, i));
    Ok(Row { label, location, location_type, price })
}

/// Quirk: ERCOT flags the *second* (standard-time) copy of the repeated hour with `Y`.
/// The API spells the flag as a boolean.
fn parse_flag(raw: &[u8]) -> Option<bool> {
    if raw.eq_ignore_ascii_case(b"Y") || raw.eq_ignore_ascii_case(b"TRUE") {
        Some(true)
    } else if raw.eq_ignore_ascii_case(b"N") || raw.eq_ignore_ascii_case(b"FALSE") {
        Some(false)
    } else {
        None
    }
}

/// Quirk: real-time files list every load zone twice, as type `LZ` and as the energy-weighted
/// `LZEW` (also `LZ_DC`/`LZ_DCEW`). The EW copy gets an `_EW` suffix so both survive the key.
fn push_location(rows: &mut LmpRows, location: &[u8], location_type: Option<&[u8]>) {
    match location_type {
        Some(t) => {
            let ew = t.len() >= 2 && t[t.len() - 2..].eq_ignore_ascii_case(b"EW");
            rows.location.push_parts(location, if ew { b"_EW" } else { b"" });
            rows.location_type.push(t);
            rows.type_valid.push(true);
        }
        None => {
            rows.location.push(location);
            match type_from_name(location) {
                Some(t) => {
                    rows.location_type.push(t);
                    rows.type_valid.push(true);
                }
                None => {
                    rows.location_type.push(b"");
                    rows.type_valid.push(false);
                }
            }
        }
    }
}

/// Quirk: the day-ahead file (NP4-190-CD) has no settlement point type column, so its hubs and
/// load zones would not reach `hub_prices`/`zone_prices`. ERCOT's names carry the type: `HB_BUSAVG`
/// is the system hub (`SH`), `HB_HUBAVG` the hub average (`AH`), other `HB_` names hubs (`HU`),
/// `LZ_` names load zones (`LZ`); the types real-time files publish for the same names. Other
/// names (resource nodes) stay without a type. Same rule as the Python normalizer's `type_from_name`.
fn type_from_name(location: &[u8]) -> Option<&'static [u8]> {
    if location.eq_ignore_ascii_case(b"HB_BUSAVG") {
        Some(b"SH")
    } else if location.eq_ignore_ascii_case(b"HB_HUBAVG") {
        Some(b"AH")
    } else if location.len() > 3 && location[..3].eq_ignore_ascii_case(b"HB_") {
        Some(b"HU")
    } else if location.len() > 3 && location[..3].eq_ignore_ascii_case(b"LZ_") {
        Some(b"LZ")
    } else {
        None
    }
}

/// Quirk: some ERCOT products ignore DST flags and number the fall-back day 1..25. There the
/// third label is the repeated copy of the second hour, so labels >= 3 move back by one and the
/// moved label 3 is marked as the repeat.
fn rewrite_25_hour_days(labels: &mut [(Label, u64)]) {
    let days_with_25: Vec<NaiveDate> = {
        let mut days: Vec<NaiveDate> = labels
            .iter()
            .filter_map(|(l, _)| match l {
                Label::HourEnding(d, 25, _, _) => Some(*d),
                _ => None,
            })
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    };
    // only the fall-back day has 25 hours: a label 25 on any other day is left for
    // `place_label` to reject
    let days_with_25: Vec<NaiveDate> = days_with_25.into_iter().filter(|d| day_hours(*d) == 25).collect();
    if days_with_25.is_empty() {
        return;
    }
    for (label, _) in labels.iter_mut() {
        if let Label::HourEnding(d, he, rep, i) = *label {
            if he >= 3 && days_with_25.binary_search(&d).is_ok() {
                *label = Label::HourEnding(d, he - 1, rep || he == 3, i);
            }
        }
    }
}

/// One document holds one row per location and interval (as `_reject_duplicates` and
/// `_unflagged_repeats` in `normalize.py`): the loader would silently keep one of two rows on the
/// same key, so a second row is an error naming both lines. On a fall-back day this is what a file
/// without a repeated-hour flag column looks like when it lists the repeated hour twice.
///
/// ERCOT lists each interval's rows as one run sorted by settlement point name (the `LZ` and
/// `LZEW` copies of a zone side by side, in either order). When a file has that shape, equal keys
/// can only be neighbours, so one comparison per row settles it; any other shape is checked with a
/// hash set of every key.
fn reject_duplicates(place: &Place<'_>, rows: &LmpRows, lines: &[u64], field: &str, flagged: bool) -> Result<()> {
    let duplicate = |i: usize, first: usize| {
        let when = chrono::DateTime::from_timestamp_micros(rows.start[i]).map_or_else(String::new, |t| t.to_rfc3339());
        let hint = if flagged { "" } else { " (the file has no repeated-hour flag column, DSTFlag, to tell the copies of a repeated hour apart)" };
        BulkError::at(
            place,
            Some(lines[i]),
            Some(field),
            format!("duplicate row for {}: the interval starting {when} is already on line {}{hint}",
                    String::from_utf8_lossy(rows.location.get(i)), lines[first]),
        )
    };
    // the published name: the location without the `_EW` suffix of an energy-weighted copy
    let name = |i: usize| -> &[u8] {
        let loc = rows.location.get(i);
        let ew = rows.type_valid[i] && rows.location_type.get(i).ends_with(b"EW");
        if ew { &loc[..loc.len() - 3] } else { loc }
    };
    let n = rows.start.len();
    let mut runs: HashMap<i64, (), BuildHasherDefault<KeyHasher>> = HashMap::default();
    let mut sorted = true;
    let mut i = 0;
    'runs: while i < n {
        if runs.insert(rows.start[i], ()).is_some() {
            sorted = false; // the same interval in two runs
            break;
        }
        let mut group = i; // first row of the current run of equal names
        let mut k = i + 1;
        while k < n && rows.start[k] == rows.start[i] {
            match name(k - 1).cmp(name(k)) {
                std::cmp::Ordering::Less => group = k,
                std::cmp::Ordering::Equal => {
                    if let Some(first) = (group..k).find(|g| rows.location.get(*g) == rows.location.get(k)) {
                        return Err(duplicate(k, first));
                    }
                }
                std::cmp::Ordering::Greater => {
                    sorted = false;
                    break 'runs;
                }
            }
            k += 1;
        }
        i = k;
    }
    if sorted {
        return Ok(());
    }
    let mut seen: HashMap<(i64, &[u8]), usize, BuildHasherDefault<KeyHasher>> =
        HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default());
    for (i, start) in rows.start.iter().enumerate() {
        if let Some(first) = seen.insert((*start, rows.location.get(i)), i) {
            return Err(duplicate(i, first));
        }
    }
    Ok(())
}

/// A fast, non-cryptographic hasher for the duplicate check's keys (a location name and an
/// interval start from our own parse; no untrusted input chooses them adversarially): the
/// multiply-rotate scheme of rustc's FxHasher, 8 bytes at a time. std's SipHash cost ~15% of
/// the whole processor's time here.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ (rest.len() as u64) << 56);
    }

    #[inline]
    fn write_i64(&mut self, v: i64) {
        self.add(v as u64);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hours of a local market day (23, 24 or 25).
fn day_hours(d: NaiveDate) -> i64 {
    let midnight = |d: NaiveDate| localize(TZ, d.and_time(chrono::NaiveTime::MIN), false);
    match (midnight(d), d.succ_opt().map(midnight)) {
        (Ok(a), Some(Ok(b))) => (b - a) / (3600 * MICROS),
        _ => 24,
    }
}

fn place_label(label: Label) -> std::result::Result<i64, String> {
    match label {
        Label::HourEnding(d, 25, _, _) => Err(format!(
            "hour ending 25 on {}, a {}-hour day (only the fall-back day has 25 hours)",
            d.format("%m/%d/%Y"),
            day_hours(d)
        )),
        Label::HourEnding(d, he, rep, interval) => hour_ending_start(TZ, d, u32::from(he), rep)
            .map(|s| s + i64::from(interval - 1) * 15 * 60 * MICROS)
            .map_err(|e| e.to_string()),
        Label::Instant(t) => Ok(t),
    }
}

fn parse_small_int(raw: &[u8]) -> Option<u8> {
    if raw.is_empty() || raw.len() > 3 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    raw.iter().try_fold(0u8, |acc, d| acc.checked_mul(10)?.checked_add(d - b'0'))
}

/// `HH:00` or `H` -> 1..25 (25 only on the rare 25-hour-ending layout).
fn parse_hour_ending(raw: &[u8]) -> Option<u8> {
    let (hours, minutes) = match raw.iter().position(|b| *b == b':') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &b"00"[..]),
    };
    if minutes != b"00" && !minutes.is_empty() {
        return None;
    }
    parse_small_int(hours).filter(|h| (1..=25).contains(h))
}

/// `MM/DD/YYYY` (one-digit month and day accepted).
fn parse_date(raw: &[u8]) -> Option<NaiveDate> {
    let mut parts = raw.split(|b| *b == b'/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || m.len() > 2 || d.len() > 2 || y.len() != 4 {
        return None;
    }
    let num = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s.iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(num(y)? as i32, num(m)?, num(d)?)
}

/// `MM/DD/YYYY HH:MM:SS`.
fn parse_timestamp(raw: &[u8]) -> Option<NaiveDateTime> {
    let text = std::str::from_utf8(raw).ok()?;
    let (date, time) = text.split_once(' ')?;
    let date = parse_date(date.as_bytes())?;
    let time = chrono::NaiveTime::parse_from_str(time.trim(), "%H:%M:%S").ok()?;
    Some(date.and_time(time))
}

/// Prices are Float64, parsed exactly (correctly rounded) as published.
fn parse_price(raw: &[u8]) -> std::result::Result<f64, &'static str> {
    if raw.is_empty() {
        return Err("empty price");
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .ok_or("not a number")
}

/// Posting time from a constructed name `cdr.<rtid>.<16 digits>.<YYYYMMDD>.<HHMMSS[fff]>.<stem>`.
///
/// Quirk: the time is local Central time; during the repeated fall-back hour ERCOT adds `xhr`
/// to the second set of names, which is the only way to tell the two copies apart.
pub fn published_from_name(place: &Place<'_>) -> Option<i64> {
    let leaf = place.leaf().as_bytes();
    let full = place.full().to_ascii_lowercase();
    let repeated = full.contains("xhr");
    (0..leaf.len()).filter(|i| leaf[*i..].starts_with(b"cdr.")).find_map(|i| {
        let (date, time) = match_constructed(&leaf[i + 4..])?;
        let naive = NaiveDateTime::parse_from_str(&format!("{date}{time}"), "%Y%m%d%H%M%S").ok()?;
        localize(TZ, naive, repeated).ok()
    })
}

/// Match `\d+\.\d+\.(\d{8})\.(\d{6})\d*\.` at the start of `s`.
fn match_constructed(s: &[u8]) -> Option<(String, String)> {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut pos = 0;
    for _ in 0..2 {
        let n = digits(&s[pos..]);
        if n == 0 || s.get(pos + n) != Some(&b'.') {
            return None;
        }
        pos += n + 1;
    }
    let n = digits(&s[pos..]);
    if n != 8 || s.get(pos + n) != Some(&b'.') {
        return None;
    }
    let date = String::from_utf8_lossy(&s[pos..pos + 8]).into_owned();
    pos += 9;
    let n = digits(&s[pos..]);
    if n < 6 || s.get(pos + n) != Some(&b'.') {
        return None;
    }
    Some((date, String::from_utf8_lossy(&s[pos..pos + 6]).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        chrono::Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap().timestamp() * MICROS
    }

    fn col<T: arrow_array::Array + Clone + 'static>(p: &Parsed, name: &str) -> T {
        let batch = p.batch.as_ref().unwrap();
        let i = batch.schema().index_of(name).unwrap();
        batch.column(i).as_any().downcast_ref::<T>().unwrap().clone()
    }

    fn starts(p: &Parsed) -> Vec<i64> {
        col::<arrow_array::TimestampMicrosecondArray>(p, "interval_start").values().to_vec()
    }

    fn ends(p: &Parsed) -> Vec<i64> {
        col::<arrow_array::TimestampMicrosecondArray>(p, "interval_end").values().to_vec()
    }

    fn parse(dataset: Dataset, csv: &str) -> Result<Parsed> {
        parse_file(dataset, &Place { archive: "t.csv", member: None }, csv.as_bytes(), None, true)
    }

    #[test]
    fn dam_hour_ending_and_leading_space_prices() {
        let p = parse(
            Dataset::LmpDam,
            "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n\
             09/29/2026,01:00,7RNCHSLR_ALL, 28.4,N\n09/29/2026,24:00,HB_NORTH, 29,N\n",
        )
        .unwrap();
        assert_eq!(starts(&p), vec![utc(2026, 9, 29, 5, 0, 0), utc(2026, 9, 30, 4, 0, 0)]);
        assert_eq!(ends(&p)[0] - starts(&p)[0], 3600 * MICROS);
        assert_eq!(col::<arrow_array::Float64Array>(&p, "lmp").values().to_vec(), vec![28.4, 29.0]);
        let types = col::<arrow_array::StringArray>(&p, "location_type");
        assert!(arrow_array::Array::is_null(&types, 0)); // a resource node: no type in the file or its name
        assert_eq!(types.value(1), "HU"); // HB_NORTH: a hub, by its name
    }

    #[test]
    fn rt15_fall_back_flag_and_lzew_suffix() {
        let p = parse(
            Dataset::LmpRt15m,
            "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,SettlementPointPrice,DSTFlag\n\
             11/03/2024,2,1,LZ_NORTH,LZ,20,N\n11/03/2024,2,1,LZ_NORTH,LZEW,21,N\n11/03/2024,2,4,LZ_NORTH,LZ,22,Y\n",
        )
        .unwrap();
        assert_eq!(starts(&p), vec![utc(2024, 11, 3, 6, 0, 0), utc(2024, 11, 3, 6, 0, 0), utc(2024, 11, 3, 7, 45, 0)]);
        let loc = col::<arrow_array::StringArray>(&p, "location");
        assert_eq!(loc.iter().flatten().collect::<Vec<_>>(), vec!["LZ_NORTH", "LZ_NORTH_EW", "LZ_NORTH"]);
    }

    #[test]
    fn twenty_five_hour_layout_without_flags() {
        let mut csv = String::from("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n");
        for he in 1..=25 {
            csv.push_str(&format!("11/03/2024,{he:02}:00,HB_NORTH,{he}\n"));
        }
        let p = parse(Dataset::LmpDam, &csv).unwrap();
        let expected: Vec<i64> = (0..25).map(|i| utc(2024, 11, 3, 5, 0, 0) + i * 3600 * MICROS).collect();
        assert_eq!(starts(&p), expected);
    }

    #[test]
    fn hour_ending_25_only_on_the_fall_back_day() {
        let mut csv = String::from("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n");
        for he in 1..=25 {
            csv.push_str(&format!("11/04/2024,{he:02}:00,HB_NORTH,{he}\n"));
        }
        let err = parse(Dataset::LmpDam, &csv).unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(26), Some("hour_ending")));
        assert!(err.to_string().contains("hour ending 25 on 11/04/2024, a 24-hour day"), "{err}");
    }

    #[test]
    fn unflagged_repeated_hour_is_an_error_not_a_merge() {
        // 2024-11-03 without a DSTFlag column: both copies of hour ending 02 would land on 06:00Z
        let csv = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n\
                   11/03/2024,01:00,HB_NORTH,10\n11/03/2024,02:00,HB_NORTH,20\n11/03/2024,02:00,HB_NORTH,21\n";
        let err = parse(Dataset::LmpDam, csv).unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(4), Some("hour_ending")));
        let text = err.to_string();
        assert!(text.contains("duplicate row for HB_NORTH") && text.contains("already on line 3"), "{text}");
        assert!(text.contains("no repeated-hour flag column"), "{text}");
    }

    #[test]
    fn duplicate_rows_are_rejected_but_lz_and_lzew_are_not_duplicates() {
        let head = "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,SettlementPointPrice,DSTFlag\n";
        let ok = format!("{head}06/01/2024,1,1,LZ_NORTH,LZ,20,N\n06/01/2024,1,1,LZ_NORTH,LZEW,21,N\n");
        assert_eq!(parse(Dataset::LmpRt15m, &ok).unwrap().rows(), 2);
        let bad = format!("{ok}06/01/2024,1,1,LZ_NORTH,LZ,22,N\n");
        let err = parse(Dataset::LmpRt15m, &bad).unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(err.to_string().contains("already on line 2") && !err.to_string().contains("flag column"), "{err}");
    }

    #[test]
    fn duplicates_found_in_unsorted_files_too() {
        let head = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n";
        let unsorted = format!("{head}06/01/2024,01:00,HB_WEST,1,N\n06/01/2024,01:00,HB_NORTH,2,N\n");
        assert_eq!(parse(Dataset::LmpDam, &unsorted).unwrap().rows(), 2);
        let err = parse(Dataset::LmpDam, &format!("{unsorted}06/01/2024,01:00,HB_WEST,3,N\n")).unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(err.to_string().contains("duplicate row for HB_WEST") && err.to_string().contains("line 2"), "{err}");
        // the same hour listed again after another hour (two runs of one interval)
        let runs = format!("{head}06/01/2024,01:00,A,1,N\n06/01/2024,02:00,A,2,N\n06/01/2024,01:00,B,3,N\n06/01/2024,01:00,A,4,N\n");
        assert_eq!(parse(Dataset::LmpDam, &runs).unwrap_err().line, Some(5));
    }

    #[test]
    fn sced_floor_and_repeated_flag() {
        let p = parse(
            Dataset::LmpRt5m,
            "SCEDTimestamp,RepeatedHourFlag,SettlementPoint,LMP\n\
             11/03/2024 01:07:13,N,HB_NORTH,30.1\n11/03/2024 01:07:13,Y,HB_NORTH,30.2\n",
        )
        .unwrap();
        assert_eq!(starts(&p), vec![utc(2024, 11, 3, 6, 5, 0), utc(2024, 11, 3, 7, 5, 0)]);
        assert_eq!(ends(&p)[1] - starts(&p)[1], 300 * MICROS);
    }

    #[test]
    fn bad_values_name_line_and_field() {
        let csv = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n\
                   09/29/2026,01:00,A, 1,N\n09/29/2026,01:00,B, 2x.46,N\n";
        let err = parse(Dataset::LmpDam, csv).unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(3), Some("SettlementPointPrice")));
        assert_eq!(err.to_string(), "t.csv, line 3, field 'SettlementPointPrice': not a number: '2x.46'");
        let err = parse(Dataset::LmpDam, &csv.replace("01:00,B", "01:30,B")).unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(3), Some("HourEnding")));
        let err = parse(Dataset::LmpDam, &csv.replace("1,N\n09", "1,Q\n09")).unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(2), Some("DSTFlag")));
        let err = parse(Dataset::LmpRt5m, "SCEDTimestamp,RepeatedHourFlag,SettlementPoint,LMP\n03/10/2024 02:30:00,N,A,1\n")
            .unwrap_err();
        assert!(err.to_string().contains("spring-forward gap"), "{err}");
        assert!(parse(Dataset::LmpDam, "   \n").unwrap_err().to_string().contains("empty file"));
    }

    #[test]
    fn lenient_mode_counts_rejected_rows() {
        let csv = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n\
                   09/29/2026,01:00,A,1\n09/29/2026,01:00,B,\n09/29/2026,01:00,C,3\n";
        let p = parse_file(Dataset::LmpDam, &Place { archive: "t.csv", member: None }, csv.as_bytes(), None, false)
            .unwrap();
        assert_eq!((p.rows(), p.rejected), (2, 1));
        assert!(p.errors[0].to_string().contains("line 3"));
    }

    #[test]
    fn published_time_from_constructed_name_and_xhr() {
        let name = "cdr.00012301.0000000000000000.20241103.011702.SPPHLZNP6905_20241103_0115.csv";
        let first = published_from_name(&Place { archive: name, member: None }).unwrap();
        let xhr = name.replace("_0115.csv", "_0115xhr.csv");
        let second = published_from_name(&Place { archive: "a.zip", member: Some(&xhr) }).unwrap();
        assert_eq!(first, utc(2024, 11, 3, 6, 17, 2));
        assert_eq!(second - first, 3600 * MICROS);
        assert_eq!(published_from_name(&Place { archive: "x.csv", member: None }), None);
    }
}
