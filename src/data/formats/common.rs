//! The interaction-file loop shared by every format, and the atomic writer used by every writer.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use crate::data::dataset::DatasetBuilder;
use crate::data::text::{csv_quote, Delimiter, LineReader};
use crate::error::{Error, Result};
use crate::progress;
use crate::store::atomic::write_atomic;

/// Where the columns of an interaction file are.
#[derive(Clone, Debug)]
pub struct Columns {
    pub user: usize,
    pub item: usize,
    pub rating: Option<usize>,
    pub timestamp: Option<usize>,
}

impl Columns {
    /// user, item, rating, timestamp in that order (the `u.data` layout).
    pub const UDATA: Columns = Columns {
        user: 0,
        item: 1,
        rating: Some(2),
        timestamp: Some(3),
    };

    fn width(&self) -> usize {
        [
            Some(self.user),
            Some(self.item),
            self.rating,
            self.timestamp,
        ]
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or(0)
            + 1
    }

    /// Resolves columns from a header by name; each role lists the names it accepts. `strip`
    /// removes a RecBole type suffix (`user_id:token` → `user_id`).
    pub fn from_header(
        path: &Path,
        fields: &[Cow<'_, str>],
        roles: &ColumnNames<'_>,
        strip_types: bool,
    ) -> Result<Columns> {
        let names: Vec<String> = fields
            .iter()
            .map(|f| {
                let f = f.trim();
                let f = if strip_types {
                    f.split(':').next().unwrap_or(f)
                } else {
                    f
                };
                header_key(f)
            })
            .collect();
        let find = |opts: &[&str]| {
            opts.iter()
                .find_map(|o| names.iter().position(|n| *n == header_key(o)))
        };
        let header_err = || Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: format!(
                "columns for user ({}) and item ({})",
                roles.user.join("|"),
                roles.item.join("|")
            ),
            found: fields.iter().map(|f| f.trim().to_string()).collect(),
        };
        let user = find(roles.user).ok_or_else(header_err)?;
        let item = find(roles.item).ok_or_else(header_err)?;
        let rating = find(roles.rating);
        let timestamp = find(roles.timestamp);
        if roles.rating_required && rating.is_none() {
            return Err(Error::Header {
                path: path.to_path_buf(),
                line: 1,
                expected: format!("a rating column ({})", roles.rating.join("|")),
                found: fields.iter().map(|f| f.trim().to_string()).collect(),
            });
        }
        // One column, one role: `--user-col item --item-col item` would pair each item with
        // itself, `--rating-col user` would read user ids as ratings.
        let roles_found = [
            ("user", Some(user)),
            ("item", Some(item)),
            ("rating", rating),
            ("timestamp", timestamp),
        ];
        for (k, (a, ca)) in roles_found.iter().enumerate() {
            if let Some((b, _)) = roles_found[k + 1..]
                .iter()
                .find(|(_, cb)| ca.is_some() && cb == ca)
            {
                return Err(Error::invalid(
                    "--user-col / --item-col / --rating-col / --timestamp-col",
                    format!(
                        "{}: {a} and {b} both name column {:?}; give each role its own column",
                        path.display(),
                        fields[ca.unwrap_or(0)].trim()
                    ),
                ));
            }
        }
        Ok(Columns {
            user,
            item,
            rating,
            timestamp,
        })
    }
}

/// A header name as matched against a role's names: case, `-`, `_`, `.` and spaces do not
/// count, so `User-ID`, `user_id` and `userId` are one name.
pub fn header_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Accepted header names for each column role.
pub struct ColumnNames<'a> {
    pub user: &'a [&'a str],
    pub item: &'a [&'a str],
    pub rating: &'a [&'a str],
    pub timestamp: &'a [&'a str],
    pub rating_required: bool,
}

/// How an interaction file is laid out.
pub struct InterSpec<'a> {
    pub delim: Delimiter,
    /// `Some` when the first line is a header: the names to resolve columns with.
    pub header: Option<(&'a ColumnNames<'a>, bool)>,
    /// Fixed columns when there is no header.
    pub columns: Columns,
    /// Allowed rating range, if the format defines one.
    pub rating_range: Option<(f64, f64)>,
    /// Whether lines starting with `#` are comments (skipped, with a note saying how many).
    pub comments: bool,
    /// What a data row looks like, for the empty-file message.
    pub expected: &'a str,
    /// How many fields a row has when there is no header (a header's own count is used
    /// otherwise): a row with more, other than empty trailing ones, is refused, since a value
    /// holding the delimiter would shift the columns silently.
    pub fields: usize,
}

/// Reads every interaction row of `path` into `b`.
pub fn read_interactions(path: &Path, spec: &InterSpec<'_>, b: &mut DatasetBuilder) -> Result<()> {
    let mut rdr = LineReader::open(path)?;
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = progress::bytes_bar(total, &format!("reading {}", path.display()));
    let mut cols = spec.columns.clone();
    let before = b.len();
    let mut header_text = None;
    let mut n_fields = spec.fields;
    if let Some((names, strip)) = spec.header {
        let (header_line, line) = match rdr.next_content_line(spec.comments)? {
            Some((n, l)) => (n, l.to_string()),
            None => {
                return Err(Error::EmptyFile {
                    path: path.to_path_buf(),
                    expected: format!("a header line, then {}", spec.expected),
                })
            }
        };
        let mut hf = Vec::new();
        let ctx = crate::data::text::Ctx {
            path,
            line: header_line,
        };
        spec.delim
            .split(&line, &mut hf)
            .map_err(|e| ctx.parse_err("header", "a delimited header", &e))?;
        cols = Columns::from_header(path, &hf, names, strip)
            .map_err(|e| e.header_at_line(header_line))?;
        n_fields = hf.len();
        header_text = Some(line);
    }
    let width = cols.width();
    loop {
        if b.len().is_multiple_of(65536) {
            bar.set_position(rdr.bytes_read());
        }
        let (line_no, line) = match rdr.next_content_line(spec.comments)? {
            Some(l) => l,
            None => break,
        };
        let ctx = crate::data::text::Ctx {
            path,
            line: line_no,
        };
        if header_text.as_deref() == Some(line) {
            // Two files concatenated: their second header must not become a user and an item.
            return Err(ctx.parse_err(
                "record",
                "a data row, not the header again (files concatenated?)",
                line,
            ));
        }
        let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(8);
        spec.delim
            .split(line, &mut fields)
            .map_err(|e| ctx.parse_err("record", "well-formed CSV", &e))?;
        ctx.need_fields(fields.len(), width, spec.delim)?;
        ctx.no_extra_fields(&fields, n_fields, spec.delim)?;
        let user = ctx.id("user", &fields[cols.user])?;
        let item = ctx.id("item", &fields[cols.item])?;
        let rating = match cols.rating {
            Some(c) => {
                let r = spec.delim.decimal(&fields[c]);
                ctx.number("rating", &r, spec.rating_range)? as f32
            }
            None => 1.0,
        };
        let ts = match cols.timestamp {
            Some(c) => ctx.timestamp("timestamp", &fields[c])?,
            None => 0,
        };
        b.push(user, item, rating, ts);
    }
    bar.finish_and_clear();
    if rdr.comments_skipped() > 0 {
        b.note(format!(
            "{}: {} comment line(s) starting with # skipped",
            path.display(),
            rdr.comments_skipped()
        ));
    }
    if b.len() == before {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            expected: spec.expected.to_string(),
        });
    }
    b.source(path.to_path_buf());
    Ok(())
}

/// Calls `f` for every non-blank line of a side file (after an optional header), with the fields
/// split and the line number for errors.
pub fn for_each_record(
    path: &Path,
    delim: Delimiter,
    skip_header: bool,
    mut f: impl FnMut(crate::data::text::Ctx<'_>, &[Cow<'_, str>]) -> Result<()>,
) -> Result<Vec<String>> {
    let mut rdr = LineReader::open(path)?;
    let mut header = Vec::new();
    if skip_header {
        if let Some((line, l)) = rdr.next_line()? {
            let mut hf = Vec::new();
            let ctx = crate::data::text::Ctx { path, line };
            delim
                .split(l, &mut hf)
                .map_err(|e| ctx.parse_err("header", "a delimited header", &e))?;
            header = hf.iter().map(|s| s.to_string()).collect();
        }
    }
    while let Some((line_no, line)) = rdr.next_line()? {
        if line.trim().is_empty() {
            continue;
        }
        let ctx = crate::data::text::Ctx {
            path,
            line: line_no,
        };
        let mut fields = Vec::new();
        delim
            .split(line, &mut fields)
            .map_err(|e| ctx.parse_err("record", "well-formed CSV", &e))?;
        f(ctx, &fields)?;
    }
    Ok(header)
}

/// Writes a text file atomically from a closure producing its lines.
pub fn write_text(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    write_atomic(path, |w| f(w))
}

/// Formats a rating without a needless `.0` (`4` rather than `4.0`, but `3.5` stays).
pub fn fmt_rating(r: f32) -> String {
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// Empty option → empty string.
pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

/// Non-empty trimmed string → Some.
pub fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Reads a demographics file whose records are `id, age, gender, occupation, zip` (u.user and
/// lshrec's users.tsv), skipping a header line when `header` is set.
pub fn read_users(
    path: &Path,
    delim: Delimiter,
    header: bool,
    b: &mut DatasetBuilder,
) -> Result<()> {
    for_each_record(path, delim, header, |ctx, f| {
        ctx.need_fields(f.len(), 5, delim)?;
        let id = ctx.id("user id", &f[0])?;
        let age = match f[1].trim() {
            "" => None,
            a => Some(ctx.small_uint("age", a)?),
        };
        b.user(
            id,
            age,
            non_empty(&f[2]),
            non_empty(&f[3]),
            non_empty(&f[4]),
        );
        Ok(())
    })?;
    b.source(path.to_path_buf());
    Ok(())
}

/// Writes one `id, age, gender, occupation, zip` line per user joined by `sep`, after an
/// optional header line.
pub fn write_users(
    ds: &crate::data::Dataset,
    path: &Path,
    sep: &str,
    header: Option<&str>,
) -> Result<()> {
    let Some(info) = &ds.user_info else {
        return Ok(());
    };
    write_text(path, |w| {
        if let Some(h) = header {
            writeln!(w, "{h}")?;
        }
        for u in 0..ds.n_users() {
            let fields = [
                ds.users.ext(u as u32).to_string(),
                opt(&info.ages[u]),
                opt(&info.genders[u]),
                opt(&info.occupations[u]),
                opt(&info.zips[u]),
            ];
            writeln!(w, "{}", fields.join(sep))?;
        }
        Ok(())
    })
}

/// Writes every interaction as `user SEP item SEP rating SEP timestamp`, after an optional
/// header; `csv` quotes ids as RFC 4180 requires.
pub fn write_ratings(
    ds: &crate::data::Dataset,
    path: &Path,
    sep: &str,
    header: Option<&str>,
    csv: bool,
) -> Result<()> {
    write_text(path, |w| {
        if let Some(h) = header {
            writeln!(w, "{h}")?;
        }
        for x in &ds.interactions {
            let (u, i) = (ds.users.ext(x.user), ds.items.ext(x.item));
            let (u, i) = if csv {
                (csv_quote(u), csv_quote(i))
            } else {
                (u.into(), i.into())
            };
            writeln!(
                w,
                "{u}{sep}{i}{sep}{}{sep}{}",
                fmt_rating(x.rating),
                x.timestamp
            )?;
        }
        Ok(())
    })
}
