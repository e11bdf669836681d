//! The entry point: input archives -> one normalized Parquet file, plus statistics.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::archive::{walk, Limits, Visit};
use crate::ercot::{parse_file, Dataset, Parsed};
use crate::error::{BulkError, Result};
use arrow_array::RecordBatch;

use crate::table::lmp_schema;
use crate::writer::write_parquet;

/// One input file: a plain CSV, a zip, or a zip of zips.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// The name errors and `source` use for the top level (default: the file name).
    pub name: Option<String>,
    /// Publication time (UTC microseconds) of every document in this input; default: parsed
    /// from each member's constructed file name.
    pub published_at: Option<i64>,
}

impl Input {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), name: None, published_at: None }
    }

    fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.path.file_name().map_or_else(|| self.path.display().to_string(), |n| n.to_string_lossy().into_owned())
        })
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Stop at the first bad row (default). When false, bad rows are skipped and counted.
    pub strict: bool,
    /// Decompression limits (default: the values of `pmp.payload`).
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Self { strict: true, limits: Limits::default() }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// CSV files read (leaves of the archives).
    pub files: usize,
    /// Archive members that were neither CSV nor zip (e.g. XML twins).
    pub skipped_members: usize,
    pub rows: usize,
    pub rejected_rows: usize,
    /// The first rejected rows' errors (lenient mode).
    pub errors: Vec<String>,
    /// Rows per input, in input order (one ingest_log row per source document).
    pub rows_per_input: Vec<usize>,
    /// Per input: the `source` value of its rows (the CSV's name when the input holds one CSV,
    /// else the input's name), i.e. what a revision of that document must replace.
    pub source_per_input: Vec<String>,
    pub seconds: f64,
    /// Wall time of the phases: read and parse (parallel), assemble the columns, write Parquet.
    pub phase_seconds: [f64; 3],
}

/// Read `inputs`, normalize them as `dataset` and write one Parquet file at `out`.
pub fn process(inputs: &[Input], dataset: &str, out: &Path, options: &Options) -> Result<Stats> {
    let t0 = Instant::now();
    let dataset = Dataset::from_id(dataset).ok_or_else(|| {
        let known: Vec<_> = Dataset::ALL.iter().map(|d| d.id()).collect();
        BulkError::new(dataset, format!("unknown ERCOT dataset; known: {}", known.join(", ")))
    })?;
    let per_input: Vec<Vec<Visit<Parsed>>> = inputs
        .par_iter()
        .map(|input| {
            let name = input.display_name();
            let data = std::fs::read(&input.path).map_err(|e| BulkError::new(&name, format!("cannot read: {e}")))?;
            let visit = |place: crate::error::Place<'_>, bytes: &[u8]| {
                parse_file(dataset, &place, bytes, input.published_at, options.strict)
            };
            walk(&name, &data, &options.limits, &visit)
        })
        .collect::<Result<_>>()?;

    let t_parsed = Instant::now();
    let mut stats = Stats::default();
    let mut batches: Vec<&RecordBatch> = Vec::new();
    for (input, visits) in inputs.iter().zip(&per_input) {
        let mut input_rows = 0;
        let mut sources: Vec<&str> = Vec::new();
        for visit in visits {
            match visit {
                Visit::Leaf(parsed) => {
                    stats.files += 1;
                    stats.rejected_rows += parsed.rejected;
                    for err in &parsed.errors {
                        if stats.errors.len() < 20 {
                            stats.errors.push(err.to_string());
                        }
                    }
                    if !sources.contains(&parsed.source.as_str()) {
                        sources.push(&parsed.source);
                    }
                    input_rows += parsed.rows();
                    batches.extend(parsed.batch.as_ref().filter(|b| b.num_rows() > 0));
                }
                Visit::Skipped(_) => stats.skipped_members += 1,
            }
        }
        stats.rows += input_rows;
        stats.rows_per_input.push(input_rows);
        stats.source_per_input.push(match sources.as_slice() {
            [one] => one.to_string(),
            _ => input.display_name(),
        });
    }
    let t_assembled = Instant::now();
    write_parquet(&batches, &lmp_schema(), out)?;
    stats.seconds = t0.elapsed().as_secs_f64();
    stats.phase_seconds = [
        (t_parsed - t0).as_secs_f64(),
        (t_assembled - t_parsed).as_secs_f64(),
        t_assembled.elapsed().as_secs_f64(),
    ];
    Ok(stats)
}
