//! The standard `lmp` table: explicit Arrow schema (the same as `pmp.schema.LMP`) and column buffers.
//!
//! Each file's rows become one Arrow batch in the parallel phase. Columns constant within a file
//! (iso, market, source) are dictionary arrays of one value in memory, so nothing is repeated per
//! row; the Parquet file declares them as plain strings, exactly the Python normalizer's schema.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn lmp_fields(constant: DataType) -> Vec<Field> {
    vec![
        Field::new("interval_start", utc(), false),
        Field::new("interval_end", utc(), false),
        Field::new("iso", constant.clone(), false),
        Field::new("market", constant.clone(), false),
        Field::new("location", DataType::Utf8, false),
        Field::new("location_type", DataType::Utf8, true),
        // ERCOT publishes no numeric location ids (the Python schema's `location_id`): always null
        Field::new("location_id", DataType::Utf8, true),
        Field::new("lmp", DataType::Float64, true),
        Field::new("energy", DataType::Float64, true),
        Field::new("congestion", DataType::Float64, true),
        Field::new("loss", DataType::Float64, true),
        Field::new("ghg", DataType::Float64, true),
        Field::new("published_at", utc(), true),
        Field::new("source", constant, false),
    ]
}

/// Column order and types of `pmp.schema.LMP` (nullability included): the file's schema.
pub fn lmp_schema() -> SchemaRef {
    Arc::new(Schema::new(lmp_fields(DataType::Utf8)))
}

/// The same columns in memory, per-file constants dictionary-encoded.
pub fn lmp_batch_schema() -> SchemaRef {
    Arc::new(Schema::new(lmp_fields(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))))
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

    /// The `i`-th value.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_array(mut self) -> StringArray {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        // Values were validated as UTF-8 when each file was read.
        StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(self.offsets)), Buffer::from(self.bytes), None).expect("valid UTF-8 string column")
    }
}

/// Rows of the `lmp` table from one file.
#[derive(Debug, Default, Clone)]
pub struct LmpRows {
    pub start: Vec<i64>,
    pub end: Vec<i64>,
    pub location: Strings,
    /// Settlement point type; rows of files without that column are null (`type_valid` false).
    pub location_type: Strings,
    pub type_valid: Vec<bool>,
    pub lmp: Vec<f64>,
}

/// What is constant over one file's rows.
#[derive(Debug, Clone)]
pub struct FileConstants<'a> {
    pub iso: &'a str,
    pub market: &'a str,
    pub published_at: Option<i64>,
    pub source: &'a str,
}

impl LmpRows {
    /// Empty columns sized for about `rows` rows and `bytes` bytes of location names.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        Self {
            start: Vec::with_capacity(rows),
            end: Vec::with_capacity(rows),
            location: Strings::with_capacity(rows, bytes),
            location_type: Strings::with_capacity(rows, rows * 2),
            type_valid: Vec::with_capacity(rows),
            lmp: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// The file's batch, in [`lmp_batch_schema`].
    pub fn into_batch(self, constants: &FileConstants<'_>) -> RecordBatch {
        let n = self.len();
        let ts = |v: Vec<i64>| TimestampMicrosecondArray::from(v).with_timezone("UTC");
        // one all-zero key buffer shared by the three one-value dictionaries
        let keys = Int32Array::new(ScalarBuffer::from(vec![0i32; n]), None);
        let constant = |value: &str| -> ArrayRef {
            let values = Arc::new(StringArray::from(vec![value]));
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys.clone(), values).expect("key 0 of one value"))
        };
        let valid = self.type_valid.iter().filter(|v| **v).count();
        let location_type: ArrayRef = if valid == 0 {
            Arc::new(StringArray::new_null(n))
        } else {
            let (offsets, values, _) = self.location_type.into_array().into_parts();
            let mask = (valid < n).then(|| self.type_valid.into());
            Arc::new(StringArray::new(offsets, values, mask))
        };
        let published: ArrayRef = match constants.published_at {
            Some(t) => Arc::new(ts(vec![t; n])),
            None => Arc::new(TimestampMicrosecondArray::new_null(n).with_timezone("UTC")),
        };
        let no_component: ArrayRef = Arc::new(Float64Array::new_null(n)); // shared by the four components
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts(self.start)),
            Arc::new(ts(self.end)),
            constant(constants.iso),
            constant(constants.market),
            Arc::new(self.location.into_array()),
            location_type,
            Arc::new(StringArray::new_null(n)),
            Arc::new(Float64Array::from(self.lmp)),
            no_component.clone(),
            no_component.clone(),
            no_component.clone(),
            no_component,
            published,
            constant(constants.source),
        ];
        RecordBatch::try_new(lmp_batch_schema(), columns).expect("lmp batch matches its schema")
    }
}
