//! Errors as values: every failure names the archive, the member inside it, the line and the field.

use std::fmt;

/// Where in the input a problem sits: `archive!member` plus the 1-based line (header = line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkError {
    /// The input file as the caller named it (an archive or a plain CSV).
    pub archive: String,
    /// The member path inside the archive (`inner.zip!file.csv`), if any.
    pub member: Option<String>,
    pub line: Option<u64>,
    pub field: Option<String>,
    pub message: String,
}

impl BulkError {
    pub fn new(archive: impl Into<String>, message: impl Into<String>) -> Self {
        Self { archive: archive.into(), member: None, line: None, field: None, message: message.into() }
    }

    /// An error at a location described by a [`Place`].
    pub fn at(place: &Place<'_>, line: Option<u64>, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            archive: place.archive.to_string(),
            member: place.member.map(str::to_string),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// The full path of the file, as the Python normalizer spells it (`archive!member`).
    pub fn file(&self) -> String {
        match &self.member {
            Some(m) => format!("{}!{}", self.archive, m),
            None => self.archive.clone(),
        }
    }
}

impl fmt::Display for BulkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for BulkError {}

/// A leaf file being read: the top-level input name and the member path inside it.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub archive: &'a str,
    pub member: Option<&'a str>,
}

impl Place<'_> {
    /// `archive!member`, the path the Python normalizer uses (its `xhr` test looks at all of it).
    pub fn full(&self) -> String {
        match self.member {
            Some(m) => format!("{}!{}", self.archive, m),
            None => self.archive.to_string(),
        }
    }

    /// The innermost file name (the `source` column).
    pub fn leaf(&self) -> &str {
        let last = self.member.unwrap_or(self.archive);
        let last = last.rsplit('!').next().unwrap_or(last);
        last.rsplit('/').next().unwrap_or(last)
    }
}

pub type Result<T> = std::result::Result<T, BulkError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_archive_member_line_field() {
        let place = Place { archive: "month.zip", member: Some("day.zip!doc.zip!cdr.x.csv") };
        let err = BulkError::at(&place, Some(7), Some("SettlementPointPrice"), "not a number: \"2x\"");
        assert_eq!(
            err.to_string(),
            "month.zip!day.zip!doc.zip!cdr.x.csv, line 7, field 'SettlementPointPrice': not a number: \"2x\""
        );
        assert_eq!(place.leaf(), "cdr.x.csv");
    }

    #[test]
    fn leaf_of_plain_file_and_folder_member() {
        assert_eq!(Place { archive: "a.csv", member: None }.leaf(), "a.csv");
        assert_eq!(Place { archive: "a.zip", member: Some("dir/b.csv") }.leaf(), "b.csv");
    }
}
