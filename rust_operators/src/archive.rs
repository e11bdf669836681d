//! Archive walking: a plain CSV, a zip, or zips of zips to any depth, members visited in parallel.
//!
//! The member order of the result is the archive order (depth first), whatever the thread
//! schedule, so output rows come out in the order the Python normalizer produces them.

use std::io::{Cursor, Read};

use rayon::prelude::*;

use crate::error::{BulkError, Place, Result};

/// Zip local-file or end-of-central-directory magic (the same test as `pmp.payload.is_zip`).
pub fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

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
pub fn walk<T, F>(archive: &str, data: &[u8], visit: &F) -> Result<Vec<Visit<T>>>
where
    T: Send,
    F: Fn(Place<'_>, &[u8]) -> Result<T> + Sync,
{
    if !is_zip(data) {
        // A plain file is taken as the CSV it claims to be, as the Python normalizer does.
        return Ok(vec![Visit::Leaf(visit(Place { archive, member: None }, data)?)]);
    }
    walk_zip(archive, None, data, visit)
}

fn walk_zip<T, F>(archive: &str, prefix: Option<&str>, data: &[u8], visit: &F) -> Result<Vec<Visit<T>>>
where
    T: Send,
    F: Fn(Place<'_>, &[u8]) -> Result<T> + Sync,
{
    let corrupt = |what: String| {
        let mut err = BulkError::new(archive, what);
        err.member = prefix.map(str::to_string);
        err
    };
    let zip = zip::ZipArchive::new(Cursor::new(data)).map_err(|e| corrupt(format!("corrupt zip ({e})")))?;
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
            let mut bytes = Vec::with_capacity(entry.size().min(1 << 30) as usize);
            entry.read_to_end(&mut bytes).map_err(|e| {
                let mut err = BulkError::new(archive, format!("corrupt zip member ({e})"));
                err.member = Some(member.clone());
                err
            })?;
            drop(entry);
            let lower = name.to_ascii_lowercase();
            if is_zip(&bytes) || lower.ends_with(".zip") {
                walk_zip(archive, Some(&member), &bytes, visit)
            } else if lower.ends_with(".csv") {
                Ok(vec![Visit::Leaf(visit(Place { archive, member: Some(&member) }, &bytes)?)])
            } else {
                Ok(vec![Visit::Skipped(format!("{archive}!{member}"))])
            }
        })
        .collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
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
        Ok(walk(archive, data, &visit)?
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
}
