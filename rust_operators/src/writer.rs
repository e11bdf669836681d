//! Parquet output: columns encoded in parallel, written to a temporary file renamed into place,
//! so a failure never leaves a partial output file behind.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowWriter};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::error::{BulkError, Result};

/// Rows per row group (pyarrow's default is 1 Mi rows as well).
pub const ROW_GROUP_ROWS: usize = 1 << 20;

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> BulkError {
    BulkError::new(path.display().to_string(), format!("{what}: {e}"))
}

/// Write `batch` to `out` atomically (temporary file in the same directory, then rename).
pub fn write_parquet(batch: &RecordBatch, out: &Path) -> Result<()> {
    let tmp = temp_path(out);
    let result = write_to(batch, &tmp).and_then(|()| std::fs::rename(&tmp, out).map_err(|e| io_err(out, "rename", e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_to(batch: &RecordBatch, path: &Path) -> Result<()> {
    let file = File::create(path).map_err(|e| io_err(path, "create", e))?;
    let schema = batch.schema();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // prices are nearly all distinct: a dictionary attempt is wasted work
        .set_column_dictionary_enabled("lmp".into(), false)
        .build();
    // ArrowWriter embeds the Arrow schema (time zone, nullability); its low-level halves let
    // every column of every row group be encoded on its own thread.
    let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema.clone(), Some(props))
        .map_err(|e| io_err(path, "parquet writer", e))?;
    let (mut file_writer, factory) = writer.into_serialized_writer().map_err(|e| io_err(path, "parquet writer", e))?;

    let groups: Vec<RecordBatch> = (0..batch.num_rows().max(1))
        .step_by(ROW_GROUP_ROWS)
        .map(|offset| batch.slice(offset, ROW_GROUP_ROWS.min(batch.num_rows() - offset)))
        .collect();
    let encoded: Vec<Vec<ArrowColumnChunk>> = groups
        .par_iter()
        .enumerate()
        .map(|(index, group)| {
            let writers = factory.create_column_writers(index).map_err(|e| io_err(path, "column writers", e))?;
            let leaves: Vec<_> = schema
                .fields()
                .iter()
                .zip(group.columns())
                .map(|(field, column)| compute_leaves(field, column).map_err(|e| io_err(path, "encode", e)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect();
            writers
                .into_par_iter()
                .zip(leaves)
                .map(|(mut writer, leaf)| {
                    writer.write(&leaf).map_err(|e| io_err(path, "encode", e))?;
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
