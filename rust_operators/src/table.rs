//! The standard `lmp` table: explicit Arrow schema (the same as `pmp.schema.LMP`) and column buffers.

use std::sync::Arc;

use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column order and types of `pmp.schema.LMP` (nullability included).
pub fn lmp_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("interval_start", ts(), false),
        Field::new("interval_end", ts(), false),
        Field::new("iso", DataType::Utf8, false),
        Field::new("market", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("location_type", DataType::Utf8, true),
        Field::new("lmp", DataType::Float64, true),
        Field::new("energy", DataType::Float64, true),
        Field::new("congestion", DataType::Float64, true),
        Field::new("loss", DataType::Float64, true),
        Field::new("ghg", DataType::Float64, true),
        Field::new("published_at", ts(), true),
        Field::new("source", DataType::Utf8, false),
    ]))
}

/// A string column as Arrow lays it out: one byte buffer and offsets (no per-value allocation).
#[derive(Debug, Default, Clone)]
pub struct Strings {
    bytes: Vec<u8>,
    offsets: Vec<i32>,
}

impl Strings {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self { bytes: Vec::with_capacity(bytes), offsets }
    }

    pub fn push(&mut self, value: &[u8]) {
        self.push_parts(value, b"");
    }

    /// Push `head` followed by `tail` as one value (e.g. a location and its `_EW` suffix).
    pub fn push_parts(&mut self, head: &[u8], tail: &[u8]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.bytes.extend_from_slice(head);
        self.bytes.extend_from_slice(tail);
        self.offsets.push(i32::try_from(self.bytes.len()).expect("string column over 2 GiB"));
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn extend(&mut self, other: &Strings) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let base = *self.offsets.last().unwrap_or(&0);
        self.bytes.extend_from_slice(&other.bytes);
        self.offsets.extend(other.offsets.iter().skip(1).map(|o| o + base));
    }

    fn into_array(mut self) -> StringArray {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        // Values were validated as UTF-8 when each file was read.
        StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(self.offsets)), Buffer::from(self.bytes), None).expect("valid UTF-8 string column")
    }
}

/// Rows of the `lmp` table from one or more files. Constant columns are run-length: one value
/// per file (iso, market, published_at, source) expanded when the batch is built.
#[derive(Debug, Default, Clone)]
pub struct LmpRows {
    pub start: Vec<i64>,
    pub end: Vec<i64>,
    pub location: Strings,
    /// Settlement point type; rows of files without that column are null (`type_valid` false).
    pub location_type: Strings,
    pub type_valid: Vec<bool>,
    pub lmp: Vec<f64>,
    /// (rows, iso, market, published_at, source) per file, in order.
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub rows: usize,
    pub iso: &'static str,
    pub market: &'static str,
    pub published_at: Option<i64>,
    pub source: String,
}

impl LmpRows {
    pub fn len(&self) -> usize {
        self.start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// Append another file's rows (keeps the order).
    pub fn extend(&mut self, other: &LmpRows) {
        self.start.extend_from_slice(&other.start);
        self.end.extend_from_slice(&other.end);
        self.location.extend(&other.location);
        self.location_type.extend(&other.location_type);
        self.type_valid.extend_from_slice(&other.type_valid);
        self.lmp.extend_from_slice(&other.lmp);
        self.runs.extend(other.runs.iter().cloned());
    }

    /// Build the Arrow batch with the `lmp` schema.
    pub fn into_batch(self) -> RecordBatch {
        let n = self.len();
        let schema = lmp_schema();
        let ts = |v: Vec<i64>| TimestampMicrosecondArray::from(v).with_timezone("UTC");
        let mut iso = Strings::with_capacity(n, n * 5);
        let mut market = Strings::with_capacity(n, n * 5);
        let mut source = Strings::with_capacity(n, n * 64);
        let mut published = Vec::with_capacity(n);
        for run in &self.runs {
            for _ in 0..run.rows {
                iso.push(run.iso.as_bytes());
                market.push(run.market.as_bytes());
                source.push(run.source.as_bytes());
                published.push(run.published_at);
            }
        }
        let valid = self.type_valid.iter().filter(|v| **v).count();
        let location_type: ArrayRef = if valid == 0 {
            Arc::new(StringArray::new_null(n))
        } else {
            let (offsets, values, _) = self.location_type.into_array().into_parts();
            let mask = (valid < n).then(|| self.type_valid.into());
            Arc::new(StringArray::new(offsets, values, mask))
        };
        let nulls = || Arc::new(Float64Array::new_null(n)) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts(self.start)),
            Arc::new(ts(self.end)),
            Arc::new(iso.into_array()),
            Arc::new(market.into_array()),
            Arc::new(self.location.into_array()),
            location_type,
            Arc::new(Float64Array::from(self.lmp)),
            nulls(),
            nulls(),
            nulls(),
            nulls(),
            Arc::new(TimestampMicrosecondArray::from(published).with_timezone("UTC")),
            Arc::new(source.into_array()),
        ];
        RecordBatch::try_new(schema, columns).expect("lmp batch matches its schema")
    }
}
