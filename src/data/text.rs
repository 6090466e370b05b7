//! Line-oriented reading with file/line context: CRLF endings, UTF-8 with a Latin-1 fallback, and
//! parse helpers whose errors name the file, the line, the field and what was expected.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Reads a text file line by line. Lines are decoded as UTF-8 when valid and as Latin-1 otherwise
/// (GroupLens ships Latin-1 titles); a trailing `\r` is removed.
pub struct LineReader {
    path: PathBuf,
    rdr: BufReader<File>,
    buf: Vec<u8>,
    text: String,
    line_no: usize,
    bytes_read: u64,
    comments: usize,
}

impl LineReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        crate::store::atomic::protect_input(path);
        Ok(LineReader {
            path: path.to_path_buf(),
            rdr: BufReader::with_capacity(1 << 20, f),
            buf: Vec::with_capacity(256),
            text: String::with_capacity(256),
            line_no: 0,
            bytes_read: 0,
            comments: 0,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based number of the line last returned.
    pub fn line_no(&self) -> usize {
        self.line_no
    }

    /// Bytes consumed so far (for progress bars).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line that is not blank nor, with `comments`, a comment (its first non-space
    /// character `#`), with its 1-based number; or `None` at the end of the file.
    pub fn next_content_line(&mut self, comments: bool) -> Result<Option<(usize, &str)>> {
        loop {
            let (blank, comment) = match self.next_line()? {
                None => return Ok(None),
                Some((_, l)) => {
                    let l = l.trim_start();
                    (l.is_empty(), comments && l.starts_with('#'))
                }
            };
            self.comments += comment as usize;
            if !(blank || comment) {
                return Ok(Some((self.line_no, &self.text)));
            }
        }
    }

    /// How many comment lines [`LineReader::next_content_line`] has skipped.
    pub fn comments_skipped(&self) -> usize {
        self.comments
    }

    /// The next line with its 1-based number, without its line terminator, or `None` at the end
    /// of the file. Blank lines are returned as empty strings; callers decide what they mean.
    pub fn next_line(&mut self) -> Result<Option<(usize, &str)>> {
        self.buf.clear();
        let n = self
            .rdr
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes_read += n as u64;
        self.line_no += 1;
        let mut end = self.buf.len();
        if end > 0 && self.buf[end - 1] == b'\n' {
            end -= 1;
        }
        if end > 0 && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        let mut bytes = &self.buf[..end];
        if self.line_no == 1 {
            bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        }
        self.text.clear();
        decode_into(bytes, &mut self.text);
        Ok(Some((self.line_no, &self.text)))
    }

    /// The context for errors about the current line.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            path: &self.path,
            line: self.line_no,
        }
    }
}

/// The ids of a list file (`--user-list`, `--exclude-items`, `--cold-items`, `--cold-users`),
/// one per line, each with its 1-based line number. Blank lines and `#` comment lines are
/// skipped; an id is the whole line, trimmed (it may hold spaces, not a tab: a line of a
/// tab-separated table is an error naming its line, not a silently misread id).
pub fn read_id_list(path: &Path, field: &str) -> Result<Vec<(usize, String)>> {
    let mut rdr = LineReader::open(path)?;
    let mut ids = Vec::new();
    while let Some((line, text)) = rdr.next_content_line(true)? {
        let id = Ctx { path, line }.id(field, text)?;
        ids.push((line, id.to_string()));
    }
    Ok(ids)
}

/// The byte-order mark some editors and spreadsheet exports put at the start of a UTF-8 file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Appends `bytes` to `out`, as UTF-8 when valid and as Latin-1 otherwise.
fn decode_into(bytes: &[u8], out: &mut String) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.extend(bytes.iter().map(|&b| b as char)),
    }
}

/// A whole small text file, decoded like [`LineReader`]'s lines: a leading byte-order mark
/// dropped, UTF-8 when valid and Latin-1 otherwise.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    crate::store::atomic::protect_input(path);
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
    let mut text = String::with_capacity(body.len());
    decode_into(body, &mut text);
    Ok(text)
}

/// A (file, line) position for error messages.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    pub path: &'a Path,
    pub line: usize,
}

impl Ctx<'_> {
    /// A parse error at this position.
    pub fn parse_err(&self, field: &str, expected: &str, found: &str) -> Error {
        Error::Parse {
            path: self.path.to_path_buf(),
            line: self.line,
            field: field.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// Fails unless there are at least `expected` fields.
    pub fn need_fields(&self, found: usize, expected: usize, delim: Delimiter) -> Result<()> {
        if found < expected {
            return Err(self.field_count_err(found, expected, delim));
        }
        Ok(())
    }

    /// Refuses a row with values beyond its first `expected` fields (empty trailing fields, as
    /// a trailing delimiter leaves, are not values): a value holding the delimiter would shift
    /// the columns silently.
    pub fn no_extra_fields(
        &self,
        fields: &[Cow<'_, str>],
        expected: usize,
        delim: Delimiter,
    ) -> Result<()> {
        if fields.iter().skip(expected).any(|f| !f.trim().is_empty()) {
            return Err(self.field_count_err(fields.len(), expected, delim));
        }
        Ok(())
    }

    fn field_count_err(&self, found: usize, expected: usize, delim: Delimiter) -> Error {
        Error::FieldCount {
            path: self.path.to_path_buf(),
            line: self.line,
            expected,
            found,
            delimiter: delim.describe().to_string(),
        }
    }

    /// A non-empty id field.
    pub fn id<'s>(&self, field: &str, s: &'s str) -> Result<&'s str> {
        let t = s.trim();
        if t.is_empty() {
            return Err(self.parse_err(field, "a non-empty id", s));
        }
        // Only a quoted CSV field can hold a tab, and every file lshrec writes (splits, models'
        // id lists, recommendations) is tab-separated: such an id would come back as two
        // fields, shifting the columns after it.
        if t.contains('\t') {
            return Err(self.parse_err(
                field,
                "an id without a tab (lshrec writes tab-separated files)",
                s,
            ));
        }
        Ok(t)
    }

    /// A finite number, optionally within `[min, max]`.
    pub fn number(&self, field: &str, s: &str, range: Option<(f64, f64)>) -> Result<f64> {
        let t = s.trim();
        let v: f64 = t
            .parse()
            .map_err(|_| self.parse_err(field, "a number", s))?;
        // Values are stored as f32: one beyond its range would turn into infinity.
        if !v.is_finite() || !(v as f32).is_finite() {
            return Err(self.parse_err(field, "a finite number (at most ±3.4e38)", s));
        }
        if let Some((min, max)) = range {
            if v < min || v > max {
                return Err(Error::OutOfRange {
                    path: self.path.to_path_buf(),
                    line: self.line,
                    field: field.to_string(),
                    value: v,
                    min,
                    max,
                });
            }
        }
        Ok(v)
    }

    /// An integer timestamp (seconds). Fractional values (RecBole writes `881250949.0`) are
    /// accepted when they are whole.
    pub fn timestamp(&self, field: &str, s: &str) -> Result<i64> {
        let t = s.trim();
        if let Ok(v) = t.parse::<i64>() {
            return Ok(v);
        }
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
            _ => iso_8601_seconds(t).ok_or_else(|| {
                self.parse_err(
                    field,
                    "an integer timestamp (Unix seconds) or an ISO 8601 date and time (2024-03-01, 2024-03-01 12:30:00, 2024-03-01T12:30:00+02:00)",
                    s,
                )
            }),
        }
    }

    /// A small non-negative integer such as an age or a year.
    pub fn small_uint(&self, field: &str, s: &str) -> Result<u16> {
        s.trim()
            .parse::<u16>()
            .map_err(|_| self.parse_err(field, "an integer between 0 and 65535", s))
    }
}

/// Unix seconds of an ISO 8601 calendar date with an optional time of day: `YYYY-MM-DD`, then
/// `T` or a space and `HH:MM[:SS[.fraction]]`, then `Z` or `±HH:MM` (or `±HHMM`). Without an
/// offset the time is read as UTC. A fraction of a second is dropped. `None` for anything else,
/// an impossible date (February 30) included.
pub fn iso_8601_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[m as usize - 1] {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400;
    let mut i = 10;
    if i == b.len() {
        return Some(secs);
    }
    if b[i] != b'T' && b[i] != b' ' {
        return None;
    }
    if b.get(i + 3) != Some(&b':') {
        return None;
    }
    let (h, mi) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
    let mut sec = 0;
    i += 6;
    if b.get(i) == Some(&b':') {
        sec = num(i + 1..i + 3)?;
        i += 3;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + sec;
    match b.get(i) {
        None => Some(secs),
        Some(b'Z') if i + 1 == b.len() => Some(secs),
        Some(&sign @ (b'+' | b'-')) => {
            let (oh, om) = match b.len() - i - 1 {
                5 if b[i + 3] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                4 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                2 => (num(i + 1..i + 3)?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            // 12:00+02:00 is 10:00 UTC.
            Some(if sign == b'+' {
                secs - offset
            } else {
                secs + offset
            })
        }
        _ => None,
    }
}

/// How the fields of a line are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    Tab,
    Pipe,
    DoubleColon,
    /// RFC 4180 comma-separated values, with quoted fields.
    Comma,
    /// Semicolon-separated values with RFC 4180 quoting: the CSV that spreadsheets write in
    /// locales whose decimal mark is a comma (and Book-Crossing's `BX-Book-Ratings.csv`). A
    /// rating may use a decimal comma there (`4,5`).
    Semicolon,
    /// One or more spaces or tabs.
    Whitespace,
}

impl Delimiter {
    /// A human-readable name for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Delimiter::Tab => "tab",
            Delimiter::Pipe => "|",
            Delimiter::DoubleColon => "::",
            Delimiter::Comma => ",",
            Delimiter::Semicolon => ";",
            Delimiter::Whitespace => "whitespace",
        }
    }

    /// Parses a user-supplied delimiter name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "\t" | "tab" | "\\t" => Delimiter::Tab,
            "|" | "pipe" => Delimiter::Pipe,
            "::" => Delimiter::DoubleColon,
            "," | "comma" | "csv" => Delimiter::Comma,
            ";" | "semicolon" => Delimiter::Semicolon,
            " " | "space" | "whitespace" => Delimiter::Whitespace,
            _ => return None,
        })
    }

    /// Guesses the delimiter of a data line. Between comma and semicolon, the one that occurs
    /// more often outside double quotes wins (`u1;i1;4,5` is semicolon-separated with a decimal
    /// comma; `1,"Heat; Ice",5` is comma-separated), ties going to the comma.
    pub fn sniff(line: &str) -> Option<Self> {
        let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
        for b in line.bytes() {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => commas += 1,
                b';' if !quoted => semicolons += 1,
                _ => {}
            }
        }
        if line.contains('\t') {
            Some(Delimiter::Tab)
        } else if line.contains("::") {
            Some(Delimiter::DoubleColon)
        } else if semicolons > commas {
            Some(Delimiter::Semicolon)
        } else if commas > 0 {
            Some(Delimiter::Comma)
        } else if line.contains('|') {
            Some(Delimiter::Pipe)
        } else if line.trim().contains(' ') {
            Some(Delimiter::Whitespace)
        } else {
            None
        }
    }

    /// Splits `line` into `out`. Fails only on a malformed quoted CSV field.
    pub fn split<'a>(self, line: &'a str, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
        out.clear();
        match self {
            Delimiter::Tab => out.extend(line.split('\t').map(Cow::Borrowed)),
            Delimiter::Pipe => out.extend(line.split('|').map(Cow::Borrowed)),
            Delimiter::DoubleColon => out.extend(line.split("::").map(Cow::Borrowed)),
            Delimiter::Whitespace => out.extend(line.split_whitespace().map(Cow::Borrowed)),
            Delimiter::Comma => return split_csv(line, b',', out),
            Delimiter::Semicolon => return split_csv(line, b';', out),
        }
        Ok(())
    }

    /// A number field as Rust parses it: with the semicolon dialect a number with a lone decimal
    /// comma (`4,5`, no point) gets a point instead. Anything else is kept as it is.
    pub fn decimal(self, field: &str) -> Cow<'_, str> {
        if self == Delimiter::Semicolon && field.matches(',').count() == 1 && !field.contains('.') {
            let point = field.replace(',', ".");
            // Only a number is rewritten: an error then quotes the field as written.
            if point.trim().parse::<f64>().is_ok() {
                return Cow::Owned(point);
            }
        }
        Cow::Borrowed(field)
    }
}

/// Splits one CSV record on `sep` (RFC 4180 quoting, no embedded newlines).
fn split_csv<'a>(line: &'a str, sep: u8, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    let sep_char = sep as char;
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        if i < bytes.len() && bytes[i] == b'"' {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match line[j..].find('"') {
                    None => return Err("unterminated quoted field".into()),
                    Some(q) => {
                        s.push_str(&line[j..j + q]);
                        j += q + 1;
                        if j < bytes.len() && bytes[j] == b'"' {
                            s.push('"');
                            j += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push(Cow::Owned(s));
            if j == bytes.len() {
                return Ok(());
            }
            if bytes[j] != sep {
                return Err("text after a closing quote".into());
            }
            i = j + 1;
        } else {
            match line[i..].find(sep_char) {
                Some(c) => {
                    out.push(Cow::Borrowed(&line[i..i + c]));
                    i += c + 1;
                }
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return Ok(());
                }
            }
        }
    }
}

/// Quotes a CSV field when needed.
pub fn csv_quote(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// Extracts a trailing `(1995)` year from a MovieLens title.
pub fn year_from_title(title: &str) -> Option<u16> {
    let t = title.trim_end();
    let open = t.rfind('(')?;
    let inner = t[open + 1..].strip_suffix(')')?;
    if inner.len() == 4 {
        inner.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        let mut v = Vec::new();
        Delimiter::Comma
            .split(
                r#"11,"American President, The (1995)",Comedy|Drama|Romance"#,
                &mut v,
            )
            .unwrap();
        assert_eq!(
            v,
            vec![
                "11",
                "American President, The (1995)",
                "Comedy|Drama|Romance"
            ]
        );
        Delimiter::Comma
            .split(r#"1,"a ""b"" c",x"#, &mut v)
            .unwrap();
        assert_eq!(v[1], r#"a "b" c"#);
        Delimiter::Comma.split("a,,b,", &mut v).unwrap();
        assert_eq!(v, vec!["a", "", "b", ""]);
        assert!(Delimiter::Comma.split(r#"1,"open"#, &mut v).is_err());
        assert_eq!(csv_quote("a,b"), "\"a,b\"");
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped_from_the_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.csv");
        std::fs::write(&p, b"\xEF\xBB\xBFuser,item\r\n\xEF\xBB\xBF1,2\r\n").unwrap();
        let mut r = LineReader::open(&p).unwrap();
        assert_eq!(r.next_line().unwrap(), Some((1, "user,item")));
        // Only the file's first bytes are a byte-order mark; later, U+FEFF is data.
        assert_eq!(r.next_line().unwrap(), Some((2, "\u{feff}1,2")));
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(read_text(&p).unwrap(), "user,item\r\n\u{feff}1,2\r\n");
        std::fs::write(&p, b"caf\xE9\n").unwrap();
        assert_eq!(read_text(&p).unwrap(), "caf\u{e9}\n");
    }

    #[test]
    fn iso_8601_dates_become_unix_seconds() {
        // Reference values: `date -u -d '…' +%s`.
        for (text, want) in [
            ("1970-01-01", 0),
            ("1997-09-20", 874_713_600),
            ("2000-02-29", 951_782_400),
            ("1969-12-31", -86_400),
            ("2024-03-01 12:30:00", 1_709_296_200),
            ("2024-03-01T12:30:00Z", 1_709_296_200),
            ("2024-03-01T12:30", 1_709_296_200),
            ("2024-03-01T12:30:00.250Z", 1_709_296_200),
            ("2024-03-01T14:30:00+02:00", 1_709_296_200),
            ("2024-03-01T14:30:00+0200", 1_709_296_200),
            ("2024-03-01T07:30:00-05", 1_709_296_200),
        ] {
            assert_eq!(iso_8601_seconds(text), Some(want), "{text}");
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-3-1",
            "2024-03-01T25:00",
            "2024-03-01T12:60",
            "2024-03-01T12",
            "2024-03-01X12:00",
            "2024-03-01T12:00:00.",
            "2024-03-01T12:00:00+2",
            "2024-03-01T12:00:00Zx",
            "24-03-01",
            "yesterday",
            "",
        ] {
            assert_eq!(iso_8601_seconds(bad), None, "{bad}");
        }
        let ctx = Ctx {
            path: Path::new("r.csv"),
            line: 3,
        };
        assert_eq!(
            ctx.timestamp("timestamp", " 1997-09-20 ").unwrap(),
            874_713_600
        );
        assert_eq!(
            ctx.timestamp("timestamp", "874713600").unwrap(),
            874_713_600
        );
        let e = ctx
            .timestamp("timestamp", "2023-02-29")
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.csv:3") && e.contains("ISO 8601"), "{e}");
    }

    #[test]
    fn years_and_sniffing() {
        assert_eq!(year_from_title("Toy Story (1995)"), Some(1995));
        assert_eq!(
            year_from_title("City of Lost Children, The (Cité des enfants perdus, La) (1995) "),
            Some(1995)
        );
        assert_eq!(year_from_title("Unknown"), None);
        assert_eq!(Delimiter::sniff("1::2::3"), Some(Delimiter::DoubleColon));
        assert_eq!(Delimiter::sniff("1\t2"), Some(Delimiter::Tab));
        assert_eq!(Delimiter::sniff("12"), None);
        assert_eq!(Delimiter::sniff("1,2,5"), Some(Delimiter::Comma));
        assert_eq!(
            Delimiter::sniff(r#""User-ID";"ISBN";"Book-Rating""#),
            Some(Delimiter::Semicolon)
        );
        assert_eq!(Delimiter::sniff("u1;i1;4,5"), Some(Delimiter::Semicolon));
        // Separators inside quotes do not count.
        assert_eq!(
            Delimiter::sniff(r#"1,"Heat; Ice; Fire",5"#),
            Some(Delimiter::Comma)
        );
        assert_eq!(Delimiter::sniff("a;b,c"), Some(Delimiter::Comma));
    }

    #[test]
    fn the_semicolon_dialect_quotes_like_csv_and_reads_decimal_commas() {
        let mut v = Vec::new();
        Delimiter::Semicolon
            .split(r#""276725";"034545104X";"0""#, &mut v)
            .unwrap();
        assert_eq!(v, vec!["276725", "034545104X", "0"]);
        Delimiter::Semicolon
            .split(r#"7;"Heat; Ice, ""Fire""";4,5"#, &mut v)
            .unwrap();
        assert_eq!(v, vec!["7", r#"Heat; Ice, "Fire""#, "4,5"]);
        assert!(Delimiter::Semicolon.split(r#"1;"a"b;2"#, &mut v).is_err());
        assert_eq!(Delimiter::Semicolon.decimal("4,5"), "4.5");
        assert_eq!(Delimiter::Semicolon.decimal("4"), "4");
        assert_eq!(Delimiter::Semicolon.decimal("x,y"), "x,y");
        // A thousands separator, or a comma beside a point, is not a decimal comma.
        assert_eq!(Delimiter::Semicolon.decimal("1,000.5"), "1,000.5");
        assert_eq!(Delimiter::Semicolon.decimal("1,000,5"), "1,000,5");
        assert_eq!(Delimiter::Comma.decimal("4,5"), "4,5");
        assert_eq!(Delimiter::parse("semicolon"), Some(Delimiter::Semicolon));
    }
}
