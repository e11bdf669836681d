//! The Python module `pmp_bulk` (abi3: one wheel for CPython 3.11+).

use std::collections::HashMap;
use std::path::PathBuf;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::archive::Limits;
use crate::ercot::Dataset;
use crate::error::BulkError;
use crate::process::{process as run, Input, Options};

create_exception!(pmp_bulk, BulkProcessError, PyValueError, "Bad input: names the archive, member, line and field.");

fn to_py_err(py: Python<'_>, err: BulkError) -> PyErr {
    let exc = BulkProcessError::new_err(err.to_string());
    let value = exc.value(py);
    let _ = value.setattr("archive", err.archive.clone());
    let _ = value.setattr("member", err.member.clone());
    let _ = value.setattr("line", err.line);
    let _ = value.setattr("field", err.field.clone());
    let _ = value.setattr("file", err.file());
    exc
}

/// `limits` as given from Python (keys member_bytes, total_bytes, ratio, ratio_min_bytes, depth;
/// a missing key keeps its default, an unknown key is an error).
fn limits_from(given: Option<HashMap<String, u64>>) -> PyResult<Limits> {
    let mut limits = Limits::default();
    for (key, value) in given.unwrap_or_default() {
        match key.as_str() {
            "member_bytes" => limits.member_bytes = value,
            "total_bytes" => limits.total_bytes = value,
            "ratio" => limits.ratio = value,
            "ratio_min_bytes" => limits.ratio_min_bytes = value,
            "depth" => limits.depth = usize::try_from(value).unwrap_or(usize::MAX),
            _ => return Err(PyValueError::new_err(format!("unknown limit {key:?}"))),
        }
    }
    Ok(limits)
}

/// process(paths, dataset, out, *, names=None, published_at=None, strict=True, threads=None, limits=None) -> dict
///
/// Normalize ERCOT archives (plain CSV, zip, zip of zips, any depth) into one Parquet file with
/// the schema of the dataset's standard table. `published_at` gives each input's publication
/// time in UTC microseconds (None: from the constructed file names). `limits` bounds
/// decompression (dict of member_bytes, total_bytes, ratio, ratio_min_bytes, depth; default: the
/// values of `pmp.payload`, which `pmp.bulk` passes in). Returns statistics:
/// files, skipped_members, rows, rejected_rows, errors, rows_per_input, source_per_input, seconds.
#[pyfunction]
#[pyo3(signature = (paths, dataset, out, *, names=None, published_at=None, strict=true, threads=None, limits=None))]
#[allow(clippy::too_many_arguments)]
fn process<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    dataset: String,
    out: PathBuf,
    names: Option<Vec<Option<String>>>,
    published_at: Option<Vec<Option<i64>>>,
    strict: bool,
    threads: Option<usize>,
    limits: Option<HashMap<String, u64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let inputs: Vec<Input> = paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| Input {
            path,
            name: names.as_ref().and_then(|n| n.get(i).cloned().flatten()),
            published_at: published_at.as_ref().and_then(|p| p.get(i).copied().flatten()),
        })
        .collect();
    let options = Options { strict, limits: limits_from(limits)? };
    let result = py.detach(|| match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| BulkError::new("thread pool", e.to_string()))
            .and_then(|pool| pool.install(|| run(&inputs, &dataset, &out, &options))),
        None => run(&inputs, &dataset, &out, &options),
    });
    let stats = result.map_err(|e| to_py_err(py, e))?;
    let dict = PyDict::new(py);
    dict.set_item("files", stats.files)?;
    dict.set_item("skipped_members", stats.skipped_members)?;
    dict.set_item("rows", stats.rows)?;
    dict.set_item("rejected_rows", stats.rejected_rows)?;
    dict.set_item("errors", stats.errors)?;
    dict.set_item("rows_per_input", stats.rows_per_input)?;
    dict.set_item("source_per_input", stats.source_per_input)?;
    dict.set_item("seconds", stats.seconds)?;
    let phases = PyDict::new(py);
    for (name, secs) in ["parse", "assemble", "write"].iter().zip(stats.phase_seconds) {
        phases.set_item(name, secs)?;
    }
    dict.set_item("phase_seconds", phases)?;
    Ok(dict)
}

/// Dataset ids this build can process.
#[pyfunction]
fn datasets() -> Vec<&'static str> {
    Dataset::ALL.iter().map(|d| d.id()).collect()
}

#[pymodule]
fn pmp_bulk(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add_function(wrap_pyfunction!(datasets, m)?)?;
    m.add("BulkProcessError", m.py().get_type::<BulkProcessError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
