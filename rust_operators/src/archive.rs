//! Archive walking: a plain CSV, a zip, or zips of zips to any depth, members visited in parallel.
//!
//! The member order of the result is the archive order (depth first), whatever the thread
//! schedule, so output rows come out in the order the Python normalizer produces them.
//!
//! Every zip is held to [`Limits`] (the values of `pmp.payload`, passed in by `pmp.bulk`): its
//! members' declared sizes, ratios and the nesting depth are checked before anything in it is
//! decompressed, and every member is then read through a bounded reader, so a member that
//! inflates past the size it declares is an error too (declared sizes can lie).

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::error::{BulkError, Place, Result};

/// Zip local-file or end-of-central-directory magic (the same test as `pmp.payload.is_zip`).
pub fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// Decompression limits. The defaults are the constants of `include/pmp/payload.py`
/// (`MAX_MEMBER_BYTES`, `MAX_TOTAL_BYTES`, `MAX_RATIO`, `RATIO_MIN_BYTES`, `MAX_DEPTH`), their one
/// home: `pmp.bulk.process_files` passes those values in on every call, so keep these equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of one member.
    pub member_bytes: u64,
    /// Uncompressed bytes of all members of one input's whole tree of nested zips.
    pub total_bytes: u64,
    /// Uncompressed / compressed, for members above `ratio_min_bytes`.
    pub ratio: u64,
    pub ratio_min_bytes: u64,
    /// Zips inside zips: the top-level zip is level 1.
    pub depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { member_bytes: 4 << 30, total_bytes: 16 << 30, ratio: 200, ratio_min_bytes: 16 << 20, depth: 4 }
    }
}

/// Never reserve more than this from a declared size (the buffer grows as real bytes arrive).
const PREALLOC_CAP: u64 = 16 << 20;

/// What a visit produced for one member.
pub enum Visit<T> {
    Leaf(T),
    /// A member that is neither CSV nor zip (e.g. the XML twin of a document): its path.
    Skipped(String),
}

/// Visit every CSV inside `data` (named `archive`), descending into nested zips.
///
/// `visit` gets the member's [`Place`] and bytes and runs on the rayon pool; results come back
/// in archive order.
pub fn walk<T, F>(archive: &str, data: &[u8], limits: &Limits, visit: &F) -> Result<Vec<Visit<T>>>
where
    T: Send,
    F: Fn(Place<'_>, &[u8]) -> Result<T> + Sync,
{
    if !is_zip(data) {
        // A plain file is taken as the CSV it claims to be, as the Python normalizer does.
        return Ok(vec![Visit::Leaf(visit(Place { archive, member: None }, data)?)]);
    }
    let walker = Walker { archive, limits, used: AtomicU64::new(0), visit };
    walker.walk_zip(None, data, 1)
}

/// One input's walk: its name, the limits and the uncompressed bytes its zips declared so far.
struct Walker<'a, F> {
    archive: &'a str,
    limits: &'a Limits,
    used: AtomicU64,
    visit: &'a F,
}

fn member_path(prefix: Option<&str>, name: &str) -> String {
    match prefix {
        Some(p) => format!("{p}!{name}"),
        None => name.to_string(),
    }
}

impl<F> Walker<'_, F> {
    fn error(&self, member: Option<&str>, message: String) -> BulkError {
        let mut err = BulkError::new(self.archive, message);
        err.member = member.map(str::to_string);
        err
    }

    /// The declared sizes of every member of `zip` (named by `prefix`) within the limits, before
    /// anything in it is decompressed (the same checks, in the same order, as `pmp.payload.open_zip`).
    fn check_declared(&self, prefix: Option<&str>, zip: &mut zip::ZipArchive<Cursor<&[u8]>>) -> Result<()> {
        let limits = self.limits;
        for index in 0..zip.len() {
            let entry = zip
                .by_index_raw(index)
                .map_err(|e| self.error(prefix, format!("corrupt zip entry {index} ({e})")))?;
            let (size, packed) = (entry.size(), entry.compressed_size());
            let member = || member_path(prefix, &String::from_utf8_lossy(entry.name_raw()));
            if size > limits.member_bytes {
                return Err(self.error(
                    Some(&member()),
                    format!(
                        "declares {size} bytes uncompressed, above the limit of {}: refused (a zip bomb?)",
                        limits.member_bytes
                    ),
                ));
            }
            if size > limits.ratio_min_bytes && size > limits.ratio.saturating_mul(packed.max(1)) {
                return Err(self.error(
                    Some(&member()),
                    format!(
                        "compressed {}:1, above the limit of {}:1: refused (a zip bomb?)",
                        size / packed.max(1),
                        limits.ratio
                    ),
                ));
            }
            if self.used.fetch_add(size, Ordering::Relaxed).saturating_add(size) > limits.total_bytes {
                return Err(self.error(
                    prefix,
                    format!(
                        "its zips declare more than {} bytes uncompressed in all: refused (a zip bomb?)",
                        limits.total_bytes
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl<F> Walker<'_, F> {
    fn walk_zip<T>(&self, prefix: Option<&str>, data: &[u8], depth: usize) -> Result<Vec<Visit<T>>>
    where
        T: Send,
        F: Fn(Place<'_>, &[u8]) -> Result<T> + Sync,
    {
        let archive = self.archive;
        let visit = self.visit;
        if depth > self.limits.depth {
            return Err(self.error(
                prefix,
                format!("zips nested deeper than {} levels: refused (a zip bomb?)", self.limits.depth),
            ));
        }
        let corrupt = |what: String| self.error(prefix, what);
        let mut zip = zip::ZipArchive::new(Cursor::new(data)).map_err(|e| corrupt(format!("corrupt zip ({e})")))?;
        self.check_declared(prefix, &mut zip)?;
        let parts: Vec<Vec<Visit<T>>> = (0..zip.len())
            .into_par_iter()
            .map(|index| {
                // ZipArchive clones share the parsed central directory: one cheap reader per task.
                let mut zip = zip.clone();
                let mut entry = zip.by_index(index).map_err(|e| corrupt(format!("corrupt zip entry {index} ({e})")))?;
                if entry.is_dir() {
                    return Ok(Vec::new());
                }
                let name = entry
                    .name()
                    .map_err(|e| corrupt(format!("zip entry {index} has an unreadable name ({e})")))?
                    .to_string();
                let member = match prefix {
                    Some(p) => format!("{p}!{name}"),
                    None => name.clone(),
                };
                // Read at most one byte more than declared (checked against the limits above):
                // a member that inflates past its declared size is refused, whatever it claims.
                let declared = entry.size();
                let mut bytes = Vec::with_capacity(declared.min(PREALLOC_CAP) as usize);
                entry
                    .by_ref()
                    .take(declared.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| self.error(Some(&member), format!("corrupt zip member ({e})")))?;
                drop(entry);
                if bytes.len() as u64 > declared {
                    return Err(self.error(
                        Some(&member),
                        format!(
                            "decompresses to more than the {declared} bytes it declares: refused (a zip bomb?)"
                        ),
                    ));
                }
                let lower = name.to_ascii_lowercase();
                if is_zip(&bytes) || lower.ends_with(".zip") {
                    self.walk_zip(Some(&member), &bytes, depth + 1)
                } else if lower.ends_with(".csv") {
                    Ok(vec![Visit::Leaf(visit(Place { archive, member: Some(&member) }, &bytes)?)])
                } else {
                    Ok(vec![Visit::Skipped(format!("{archive}!{member}"))])
                }
            })
            .collect::<Result<_>>()?;
        Ok(parts.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut zw = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            for (name, data) in members {
                zw.start_file(*name, opts).unwrap();
                zw.write_all(data).unwrap();
            }
            zw.finish().unwrap();
        }
        buf.into_inner()
    }

    fn names(archive: &str, data: &[u8]) -> Result<Vec<String>> {
        let visit = |p: Place<'_>, d: &[u8]| Ok(format!("{}={}", p.full(), d.len()));
        Ok(walk(archive, data, &Limits::default(), &visit)?
            .into_iter()
            .map(|v| match v {
                Visit::Leaf(s) => s,
                Visit::Skipped(s) => format!("skip {s}"),
            })
            .collect())
    }

    #[test]
    fn plain_zip_and_nested_zips_in_order() {
        let doc1 = zip_of(&[("a.csv", b"x\n1\n")]);
        let doc2 = zip_of(&[("b.csv", b"x\n12\n"), ("b.xml", b"<x/>")]);
        let day = zip_of(&[("1.zip", &doc1), ("2.zip", &doc2)]);
        let month = zip_of(&[("d1.zip", &day), ("readme.txt", b"hi"), ("c.csv", b"x\n")]);
        assert_eq!(names("plain.csv", b"x\n").unwrap(), vec!["plain.csv=2"]);
        assert_eq!(
            names("m.zip", &month).unwrap(),
            vec![
                "m.zip!d1.zip!1.zip!a.csv=4",
                "m.zip!d1.zip!2.zip!b.csv=5",
                "skip m.zip!d1.zip!2.zip!b.xml",
                "skip m.zip!readme.txt",
                "m.zip!c.csv=2",
            ]
        );
    }

    #[test]
    fn corrupt_zip_names_the_archive_and_member() {
        let inner = zip_of(&[("a.csv", &b"x,y\n".repeat(1000))]);
        let mut cut = inner.clone();
        cut.truncate(inner.len() / 2);
        let err = names("top.zip", &cut).unwrap_err();
        assert!(err.to_string().starts_with("top.zip: corrupt zip"), "{err}");
        let outer = zip_of(&[("inner.zip", &cut)]);
        let err = names("top.zip", &outer).unwrap_err();
        assert!(err.to_string().starts_with("top.zip!inner.zip: corrupt zip"), "{err}");
    }

    #[test]
    fn crc_mismatch_is_an_error() {
        let mut data = zip_of(&[("a.csv", b"hello,world\n1,2\n")]);
        // flip one byte of the stored (uncompressed? no: deflated) payload
        let pos = data.windows(5).position(|w| w == b"a.csv").unwrap() + 5 + 2;
        data[pos] ^= 0xff;
        let err = names("t.zip", &data).unwrap_err();
        assert!(err.to_string().contains("t.zip!a.csv: corrupt zip member"), "{err}");
    }

    fn names_within(archive: &str, data: &[u8], limits: &Limits) -> Result<Vec<String>> {
        let visit = |p: Place<'_>, d: &[u8]| Ok(format!("{}={}", p.full(), d.len()));
        Ok(walk(archive, data, limits, &visit)?
            .into_iter()
            .filter_map(|v| match v {
                Visit::Leaf(s) => Some(s),
                Visit::Skipped(_) => None,
            })
            .collect())
    }

    fn small() -> Limits {
        Limits { member_bytes: 1 << 20, total_bytes: 3 << 20, ratio: 50, ratio_min_bytes: 64 << 10, depth: 3 }
    }

    #[test]
    fn defaults_are_the_python_limits() {
        // include/pmp/payload.py: MAX_MEMBER_BYTES, MAX_TOTAL_BYTES, MAX_RATIO, RATIO_MIN_BYTES, MAX_DEPTH
        let d = Limits::default();
        assert_eq!(
            (d.member_bytes, d.total_bytes, d.ratio, d.ratio_min_bytes, d.depth),
            (4 * (1 << 30), 16 * (1 << 30), 200, 16 * (1 << 20), 4)
        );
    }

    #[test]
    fn highly_compressible_member_over_the_ratio_is_refused() {
        // 512 KiB of one byte deflates to ~1 KiB: ~500:1, over 50:1 and above ratio_min_bytes
        let bomb = zip_of(&[("ok.csv", b"x\n1\n"), ("bomb.csv", &vec![b'0'; 512 << 10])]);
        let err = names_within("top.zip", &bomb, &small()).unwrap_err();
        assert_eq!((err.archive.as_str(), err.member.as_deref()), ("top.zip", Some("bomb.csv")));
        assert!(err.message.contains("above the limit of 50:1"), "{err}");
        // below ratio_min_bytes the ratio is not held against it (small CSVs compress well too)
        let tiny = zip_of(&[("a.csv", &vec![b'0'; 32 << 10])]);
        assert_eq!(names_within("t.zip", &tiny, &small()).unwrap(), vec!["t.zip!a.csv=32768"]);
    }

    #[test]
    fn member_and_total_sizes_are_limited_across_nested_zips() {
        let limits = Limits { ratio: u64::MAX, ..small() };
        let big = zip_of(&[("big.csv", &vec![b'1'; (1 << 20) + 1])]);
        let err = names_within("top.zip", &zip_of(&[("in.zip", &big)]), &limits).unwrap_err();
        assert_eq!(err.member.as_deref(), Some("in.zip!big.csv"), "{err}");
        assert!(err.message.contains("above the limit of 1048576"), "{err}");
        // four members of 1 MiB, each within the member limit, in two inner zips: 4 MiB > 3 MiB
        let part = vec![b'2'; 1 << 20];
        let inner = zip_of(&[("a.csv", &part), ("b.csv", &part)]);
        let top = zip_of(&[("1.zip", &inner), ("2.zip", &inner)]);
        let err = names_within("top.zip", &top, &limits).unwrap_err();
        assert_eq!(err.archive, "top.zip");
        assert!(err.message.contains("more than 3145728 bytes uncompressed in all"), "{err}");
        // each input has its own budget: the same inner zip alone passes
        assert_eq!(names_within("one.zip", &inner, &limits).unwrap().len(), 2);
    }

    /// Rewrite the uncompressed size of `member` in its local header and central directory entry.
    fn lie_about_size(data: &mut [u8], member: &str, size: u32) {
        let name = member.as_bytes();
        let mut patched = 0;
        for at in 0..data.len().saturating_sub(46) {
            let (sig, name_at, size_at) = match &data[at..at + 4] {
                b"PK\x03\x04" => (true, at + 30, at + 22),
                b"PK\x01\x02" => (true, at + 46, at + 24),
                _ => (false, 0, 0),
            };
            if sig && data[name_at..].starts_with(name) {
                data[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "local header and central directory entry");
    }

    #[test]
    fn member_inflating_past_its_declared_size_is_refused() {
        // declares 100 bytes (1 MiB of zeros really): within every declared limit, yet a bomb
        let mut data = zip_of(&[("liar.csv", &vec![b'0'; 1 << 20])]);
        lie_about_size(&mut data, "liar.csv", 100);
        let err = names_within("top.zip", &zip_of(&[("in.zip", &data)]), &small()).unwrap_err();
        assert_eq!((err.archive.as_str(), err.member.as_deref()), ("top.zip", Some("in.zip!liar.csv")), "{err}");
        // the zip crate notices first ("larger than its declared uncompressed size"); the bounded
        // read stops it in any case one byte past the declared size
        assert!(err.message.contains("declare"), "{err}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut data = zip_of(&[("a.csv", b"x\n")]);
        for level in 1..3 {
            data = zip_of(&[(&format!("{level}.zip"), &data)]);
        }
        // three levels of zips: at the limit
        assert_eq!(names_within("top.zip", &data, &small()).unwrap(), vec!["top.zip!2.zip!1.zip!a.csv=2"]);
        let deeper = zip_of(&[("3.zip", &data)]);
        let err = names_within("top.zip", &deeper, &small()).unwrap_err();
        assert_eq!(err.to_string(), "top.zip!3.zip!2.zip!1.zip: zips nested deeper than 3 levels: refused (a zip bomb?)");
    }
}
