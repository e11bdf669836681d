//! Parquet output: columns encoded in parallel, written to a temporary file renamed into place,
//! so a failure never leaves a partial output file behind.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowWriter, ArrowWriterOptions};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use rayon::prelude::*;

use crate::error::{BulkError, Result};

/// Rows per row group (pyarrow's default is 1 Mi rows as well).
pub const ROW_GROUP_ROWS: usize = 1 << 20;

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> BulkError {
    BulkError::new(path.display().to_string(), format!("{what}: {e}"))
}

/// Write `batches` (in order) to `out` atomically (temporary file in the same directory, then
/// rename). `file_schema` is the schema the file declares to readers; the batches may hold the same
/// columns in another in-memory form with the same Parquet type (e.g. one-value dictionaries for
/// strings constant within a file).
pub fn write_parquet(batches: &[&RecordBatch], file_schema: &SchemaRef, out: &Path) -> Result<()> {
    let tmp = temp_path(out);
    let result = write_to(batches, file_schema, &tmp)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(|e| io_err(out, "rename", e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Consecutive batches grouped into row groups of about [`ROW_GROUP_ROWS`] rows (files are never split).
fn row_groups<'a>(batches: &[&'a RecordBatch]) -> Vec<Vec<&'a RecordBatch>> {
    let mut groups: Vec<Vec<&RecordBatch>> = Vec::new();
    let mut rows = 0;
    for batch in batches {
        if groups.is_empty() || rows + batch.num_rows() > ROW_GROUP_ROWS && rows > 0 {
            groups.push(Vec::new());
            rows = 0;
        }
        rows += batch.num_rows();
        groups.last_mut().expect("a group").push(batch);
    }
    groups
}

fn write_to(batches: &[&RecordBatch], file_schema: &SchemaRef, path: &Path) -> Result<()> {
    let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
    let batch_schema = batches.first().map_or_else(|| file_schema.clone(), |b| b.schema());
    // Encodings chosen per column for speed at a similar file size: dictionaries where values
    // repeat across files (locations, file names); delta-packed timestamps (runs of one value
    // per file); plain strings for per-file constants (snappy folds the repeats); plain prices.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false);
    for column in ["location", "source"] {
        props = props.set_column_dictionary_enabled(column.into(), true);
    }
    for column in ["interval_start", "interval_end", "published_at"] {
        props = props.set_column_encoding(column.into(), Encoding::DELTA_BINARY_PACKED);
    }
    // min/max statistics where readers filter (time, location, price), not on constant labels
    for column in ["iso", "market", "location_type", "location_id", "source"] {
        props = props.set_column_statistics_enabled(column.into(), EnabledStatistics::None);
    }
    let mut props = props.build();
    // Readers (pyarrow) take column types from the embedded Arrow schema: declare the file schema.
    add_encoded_arrow_schema_to_metadata(file_schema, &mut props);
    let options = ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    let writer = ArrowWriter::try_new_with_options(BufWriter::with_capacity(1 << 20, file), batch_schema.clone(), options)
        .map_err(|e| io_err(path, "parquet writer", e))?;
    // The writer's low-level halves let every column of every row group be encoded on its own thread.
    let (mut file_writer, factory) = writer.into_serialized_writer().map_err(|e| io_err(path, "parquet writer", e))?;
    let groups = row_groups(batches);
    let encoded: Vec<Vec<ArrowColumnChunk>> = groups
        .par_iter()
        .enumerate()
        .map(|(index, group)| {
            let writers = factory.create_column_writers(index).map_err(|e| io_err(path, "column writers", e))?;
            writers
                .into_par_iter()
                .enumerate()
                .map(|(column, mut writer)| {
                    let field = batch_schema.field(column);
                    for batch in group {
                        for leaf in compute_leaves(field, batch.column(column)).map_err(|e| io_err(path, "encode", e))? {
                            writer.write(&leaf).map_err(|e| io_err(path, "encode", e))?;
                        }
                    }
                    writer.close().map_err(|e| io_err(path, "encode", e))
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    for chunks in encoded {
        let mut row_group = file_writer.next_row_group().map_err(|e| io_err(path, "row group", e))?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group).map_err(|e| io_err(path, "row group", e))?;
        }
        row_group.close().map_err(|e| io_err(path, "row group", e))?;
    }
    file_writer.close().map_err(|e| io_err(path, "close", e))?;
    Ok(())
}
