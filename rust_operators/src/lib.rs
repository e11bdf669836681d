//! `pmp_bulk`: ISO archives (plain CSV, zip, zips of zips) -> one normalized Parquet file.
//!
//! The Python normalizers in `include/pmp/isos/*/normalize.py` are the reference: this crate
//! produces exactly their schema, types and values, only faster (all cores, no per-file
//! interpreter overhead). Modules, in data-path order:
//!
//! * [`archive`]: walk nested zips in parallel, members in archive order;
//! * [`csvread`]: CSV records from memory (`csv_core`, one parser per thread);
//! * [`columns`]: schema evolution (column spellings) in one place;
//! * [`ercot`]: ERCOT layouts and their quirks -> `lmp` rows;
//! * [`timeconv`]: local labels -> UTC (DST rules of `pmp.timeutil`);
//! * [`table`]: the explicit Arrow schema and column buffers;
//! * [`writer`]: parallel Parquet encoding, atomic output;
//! * [`process`]: the entry point and its statistics.

pub mod archive;
pub mod columns;
pub mod csvread;
pub mod ercot;
pub mod error;
pub mod process;
pub mod table;
pub mod timeconv;
pub mod writer;

#[cfg(feature = "python")]
mod python;

pub use error::BulkError;
pub use process::{process, Input, Options, Stats};
