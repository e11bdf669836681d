//! The entry point: input archives -> one normalized Parquet file, plus statistics.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::archive::{walk, Visit};
use crate::ercot::{parse_file, Dataset, Parsed};
use crate::error::{BulkError, Result};
use crate::table::LmpRows;
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
}

impl Default for Options {
    fn default() -> Self {
        Self { strict: true }
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
            walk(&name, &data, &visit)
        })
        .collect::<Result<_>>()?;

    let mut stats = Stats::default();
    let total: usize = per_input
        .iter()
        .flatten()
        .map(|v| if let Visit::Leaf(p) = v { p.rows.len() } else { 0 })
        .sum();
    let mut rows = LmpRows {
        start: Vec::with_capacity(total),
        end: Vec::with_capacity(total),
        lmp: Vec::with_capacity(total),
        type_valid: Vec::with_capacity(total),
        ..LmpRows::default()
    };
    for (input, visits) in inputs.iter().zip(per_input) {
        let mut input_rows = 0;
        let mut sources: Vec<String> = Vec::new();
        for visit in visits {
            match visit {
                Visit::Leaf(parsed) => {
                    stats.files += 1;
                    for run in &parsed.rows.runs {
                        if !sources.contains(&run.source) {
                            sources.push(run.source.clone());
                        }
                    }
                    stats.rejected_rows += parsed.rejected;
                    stats.errors.extend(parsed.errors.iter().map(ToString::to_string).take(20 - stats.errors.len().min(20)));
                    input_rows += parsed.rows.len();
                    rows.extend(&parsed.rows);
                }
                Visit::Skipped(_) => stats.skipped_members += 1,
            }
        }
        stats.rows_per_input.push(input_rows);
        stats.source_per_input.push(if sources.len() == 1 { sources.remove(0) } else { input.display_name() });
    }
    stats.rows = rows.len();
    write_parquet(&rows.into_batch(), out)?;
    stats.seconds = t0.elapsed().as_secs_f64();
    Ok(stats)
}
