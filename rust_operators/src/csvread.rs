//! CSV records straight from an in-memory file: RFC 4180 quoting (`""` escapes, delimiters and
//! newlines inside quotes), LF or CRLF line ends, blank lines skipped, 1-based line numbers.
//!
//! Written for the shape of ISO files (a few short fields per line, thousands of small files):
//! one pass over the bytes with plain loops (a SIMD search costs more to set up than a 5-byte
//! field takes to scan), fields returned as slices of the input without copying; only quoted
//! fields holding `""` are unescaped into a scratch buffer.

#[derive(Debug, Clone, Copy)]
enum Span {
    Input(usize, usize),
    Scratch(usize, usize),
}

/// One record: its fields (unquoted) and the 1-based line it starts on.
pub struct Record<'b> {
    pub line: u64,
    input: &'b [u8],
    scratch: &'b [u8],
    fields: &'b [Span],
}

impl<'b> Record<'b> {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i`, or an empty slice when the record is shorter.
    pub fn get(&self, i: usize) -> &'b [u8] {
        match self.fields.get(i) {
            Some(Span::Input(a, b)) => &self.input[*a..*b],
            Some(Span::Scratch(a, b)) => &self.scratch[*a..*b],
            None => b"",
        }
    }
}

/// End of an unquoted field: the first `,` or `\n` at or after `from` (or the input's end).
#[inline]
fn field_end(input: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < input.len() && input[i] != b',' && input[i] != b'\n' {
        i += 1;
    }
    i
}

/// Visit every record of `input` in order; `visit` returns `Err` to stop.
pub fn for_each_record<E>(input: &[u8], mut visit: impl FnMut(Record<'_>) -> Result<(), E>) -> Result<(), E> {
    let len = input.len();
    let mut pos = 0;
    let mut line = 1u64;
    let mut fields: Vec<Span> = Vec::with_capacity(16);
    let mut scratch: Vec<u8> = Vec::new();
    loop {
        // blank lines between records
        while pos < len && matches!(input[pos], b'\n' | b'\r') {
            line += u64::from(input[pos] == b'\n');
            pos += 1;
        }
        if pos >= len {
            return Ok(());
        }
        let record_line = line;
        fields.clear();
        scratch.clear();
        loop {
            let span = if input[pos] == b'"' {
                let (span, next, newlines) = quoted(input, pos + 1, &mut scratch);
                line += newlines;
                pos = next;
                if pos < len && !matches!(input[pos], b',' | b'\n' | b'\r') {
                    // text after the closing quote up to the delimiter belongs to the field
                    let end = field_end(input, pos);
                    let tail_end = if end < len && end > pos && input[end - 1] == b'\r' { end - 1 } else { end };
                    let s = match span {
                        Span::Input(a, b) => {
                            let s = scratch.len();
                            scratch.extend_from_slice(&input[a..b]);
                            s
                        }
                        Span::Scratch(a, _) => a,
                    };
                    scratch.extend_from_slice(&input[pos..tail_end]);
                    pos = tail_end;
                    Span::Scratch(s, scratch.len())
                } else {
                    span
                }
            } else {
                let end = field_end(input, pos);
                let value_end = if end < len && end > pos && input[end - 1] == b'\r' { end - 1 } else { end };
                let span = Span::Input(pos, value_end);
                pos = value_end;
                span
            };
            fields.push(span);
            if pos >= len {
                break;
            }
            match input[pos] {
                b',' => {
                    pos += 1;
                    if pos >= len {
                        fields.push(Span::Input(len, len)); // trailing delimiter: one more empty field
                        break;
                    }
                }
                b'\n' => {
                    pos += 1;
                    line += 1;
                    break;
                }
                _ => {
                    // `\r`: CRLF, or a lone CR ending the input
                    pos += 1;
                    if pos < len && input[pos] == b'\n' {
                        pos += 1;
                        line += 1;
                    }
                    break;
                }
            }
        }
        visit(Record { line: record_line, input, scratch: &scratch, fields: &fields })?;
    }
}

/// A quoted field whose content starts at `start`: its span, the position after the closing
/// quote and the newlines inside it.
#[inline]
fn quoted(input: &[u8], start: usize, scratch: &mut Vec<u8>) -> (Span, usize, u64) {
    let len = input.len();
    let mut i = start;
    let mut seg = start;
    let mut newlines = 0;
    let mut unescaped: Option<usize> = None; // where this field begins in `scratch`
    loop {
        while i < len && input[i] != b'"' {
            newlines += u64::from(input[i] == b'\n');
            i += 1;
        }
        if i >= len {
            // unterminated quote: the rest of the input is the field
            return match unescaped {
                Some(s) => {
                    scratch.extend_from_slice(&input[seg..]);
                    (Span::Scratch(s, scratch.len()), len, newlines)
                }
                None => (Span::Input(start, len), len, newlines),
            };
        }
        if i + 1 < len && input[i + 1] == b'"' {
            // `""` inside quotes is one quote: from here on the field is copied
            unescaped.get_or_insert(scratch.len());
            scratch.extend_from_slice(&input[seg..=i]);
            i += 2;
            seg = i;
            continue;
        }
        return match unescaped {
            Some(s) => {
                scratch.extend_from_slice(&input[seg..i]);
                (Span::Scratch(s, scratch.len()), i + 1, newlines)
            }
            None => (Span::Input(start, i), i + 1, newlines),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &str) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        for_each_record::<()>(input.as_bytes(), |r| {
            out.push((r.line, (0..r.len()).map(|i| String::from_utf8(r.get(i).to_vec()).unwrap()).collect()));
            Ok(())
        })
        .unwrap();
        out
    }

    fn row(line: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (line, fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn quoting_crlf_blank_lines_and_line_numbers() {
        let got = records("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n\r\n1,2\n3,\"multi\nline\"\n4,5");
        assert_eq!(
            got,
            vec![
                row(1, &["a", "b"]),
                row(2, &["x, y", "say \"hi\""]),
                row(4, &["1", "2"]),
                row(5, &["3", "multi\nline"]),
                row(7, &["4", "5"]),
            ]
        );
    }

    #[test]
    fn empty_fields_trailing_delimiters_and_odd_quotes() {
        assert_eq!(records("a,,c\n,\n"), vec![row(1, &["a", "", "c"]), row(2, &["", ""])]);
        assert_eq!(records("a,b,\n"), vec![row(1, &["a", "b", ""])]);
        assert_eq!(records("a,b,"), vec![row(1, &["a", "b", ""])]);
        assert_eq!(records("\"\"\"\",\"\"\n"), vec![row(1, &["\"", ""])]);
        assert_eq!(records("\"ab\"cd,e\r\n"), vec![row(1, &["abcd", "e"])]);
        assert_eq!(records("\"a\"\"b\"x,e"), vec![row(1, &["a\"bx", "e"])]);
        assert_eq!(records("\"open\nend"), vec![row(1, &["open\nend"])]);
        assert_eq!(records(""), vec![]);
        assert_eq!(records("\n\r\n"), vec![]);
    }

    #[test]
    fn long_records() {
        let wide: Vec<String> = (0..100).map(|i| format!("field{i:04}-{}", "x".repeat(50))).collect();
        assert_eq!(records(&(wide.join(",") + "\n"))[0].1, wide);
    }
}
