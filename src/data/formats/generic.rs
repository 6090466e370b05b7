//! A generic delimited interaction file with named (or positional) columns, plus optional
//! `items.tsv` / `users.tsv` side files next to it.
//!
//! - The delimiter is sniffed from the first line (tab, `::`, comma or semicolon, `|`, spaces)
//!   unless given.
//! - The first line is a header when one of its fields is a known column name (`user`, `user_id`,
//!   `userId`, `item`, `item_id`, `movieId`, …), when column names were passed explicitly, or
//!   when its third field (the rating's place) is not a number, or when its first two fields
//!   are words above a line whose first two are numbers. A header whose names are not
//!   known is refused with the names it may use, rather than read as a row.
//! - Without a header the columns are positional: user, item, then optional rating and timestamp.
//! - Without a rating column every row is a positive with weight 1. Ids can be any strings.

use std::borrow::Cow;
use std::path::Path;

use super::common::{
    fmt_rating, for_each_record, header_key, non_empty, opt, read_interactions, write_text,
    ColumnNames, Columns, InterSpec,
};
use crate::data::dataset::{Dataset, DatasetBuilder};
use crate::data::text::{Delimiter, LineReader};
use crate::error::{Error, Result};

/// Column and delimiter overrides for generic files.
#[derive(Clone, Debug, Default)]
pub struct GenericOptions {
    pub delimiter: Option<Delimiter>,
    pub user_col: Option<String>,
    pub item_col: Option<String>,
    pub rating_col: Option<String>,
    pub timestamp_col: Option<String>,
}

// Matched whatever their case and punctuation ([`header_key`]): `userId`, `User-ID` and
// `user_id` are one name. The order is the preference when a header has several.
const USER: &[&str] = &[
    "user",
    "user_id",
    "uid",
    "customer_id",
    "visitor_id",
    "reviewer_id",
    "member_id",
    "account_id",
];
const ITEM: &[&str] = &[
    "item",
    "item_id",
    "iid",
    "movie",
    "movie_id",
    "product_id",
    "track_id",
    "song_id",
    "artist_id",
    "book_id",
    "isbn",
    "asin",
    "anime_id",
    "business_id",
    "recipe_id",
    "video_id",
    "article_id",
];
const RATING: &[&str] = &[
    "rating", "score", "stars", "overall", "weight", "value", "count", "plays",
];
const TIMESTAMP: &[&str] = &[
    "timestamp",
    "ts",
    "time",
    "datetime",
    "date",
    "created_at",
    "unix_review_time",
];

/// What the first line of a generic file says about its layout.
pub struct Sniffed {
    pub delim: Delimiter,
    pub has_header: bool,
    /// Taken for a header only because its third field is not a number (`1,2,five` may be a
    /// row with a bad rating as well).
    pub header_by_rating: bool,
    /// The number of the first line that is not blank nor a comment: the header, if any.
    pub header_line: usize,
    pub n_fields: usize,
    /// That line's text.
    pub first_line: String,
}

/// Looks at the first line of `path`.
pub fn sniff(path: &Path, opts: &GenericOptions) -> Result<Sniffed> {
    let mut rdr = LineReader::open(path)?;
    // Blank lines and `#` comments (a note says how many) may stand above the header.
    let (header_line, first) = match rdr.next_content_line(true)? {
        Some((n, l)) => (n, l.to_string()),
        None => {
            return Err(Error::EmptyFile {
                path: path.to_path_buf(),
                expected: "delimited user,item[,rating[,timestamp]] rows".into(),
            })
        }
    };
    let delim = match opts.delimiter.or_else(|| Delimiter::sniff(&first)) {
        Some(d) => d,
        None => {
            return Err(Error::FieldCount {
                path: path.to_path_buf(),
                line: rdr.line_no(),
                expected: 2,
                found: 1,
                delimiter: "tab, ::, comma, semicolon, | or spaces".into(),
            })
        }
    };
    let mut fields = Vec::new();
    delim
        .split(&first, &mut fields)
        .map_err(|e| rdr.ctx().parse_err("header", "well-formed CSV", &e))?;
    let named = opts.user_col.is_some() || opts.item_col.is_some();
    let known = fields.iter().any(|f| {
        let f = header_key(f.trim());
        (USER.iter().chain(ITEM)).any(|n| header_key(n) == f)
    });
    // "u,i,r": no known name, but a rating column that holds no number is a header, not a row
    // whose rating is bad.
    let unnamed = fields.len() >= 3 && fields[2].trim().parse::<f64>().is_err();
    // "customer\tproduct" over numeric ids: ids may be any strings, but a first line whose
    // user and item are both words above a second line whose ids are both numbers is a header.
    fn ids_are_numbers(f: &[std::borrow::Cow<str>], numbers: bool) -> bool {
        f.len() >= 2
            && f[..2]
                .iter()
                .all(|x| x.trim().parse::<f64>().is_ok() == numbers)
    }
    let mut over_numbers = false;
    if ids_are_numbers(&fields, false) {
        if let Some((_, l)) = rdr.next_content_line(true)? {
            let mut second = Vec::new();
            over_numbers = delim.split(l, &mut second).is_ok() && ids_are_numbers(&second, true);
        }
    }
    Ok(Sniffed {
        delim,
        has_header: named || known || unnamed || over_numbers,
        header_by_rating: unnamed && !(named || known || over_numbers),
        header_line,
        // A trailing delimiter (`1\t2\t5\t`) adds an empty field, not a column.
        n_fields: fields.len()
            - fields
                .iter()
                .rev()
                .take_while(|f| f.trim().is_empty())
                .count(),
        first_line: first.clone(),
    })
}

/// Where a generic file keeps each role, as its reader resolves them.
pub struct Layout {
    pub delim: Delimiter,
    pub has_header: bool,
    /// The resolved columns (positional when there is no header).
    pub columns: Columns,
    /// A note for header columns that no role took, if any.
    pub unread: Option<String>,
    /// The line of the header, or of the first row when there is none.
    pub header_line: usize,
    /// The fields of that line.
    pub n_fields: usize,
}

/// Resolves the columns of a generic file: from its header's names, or by position.
pub fn layout(path: &Path, opts: &GenericOptions) -> Result<Layout> {
    let s = sniff(path, opts)?;
    let positional = Columns {
        user: 0,
        item: 1,
        rating: (s.n_fields >= 3).then_some(2),
        timestamp: (s.n_fields >= 4).then_some(3),
    };
    let (columns, unread) = if s.has_header {
        let mut hf = Vec::new();
        // Split once already by `sniff`, with the same delimiter.
        s.delim.split(&s.first_line, &mut hf).map_err(|e| {
            crate::data::text::Ctx {
                path,
                line: s.header_line,
            }
            .parse_err("header", "well-formed CSV", &e)
        })?;
        let c = with_names(opts, |names| Columns::from_header(path, &hf, names, false))
            .map_err(|e| name_hint(e, s.header_by_rating, s.header_line))?;
        let unread = unread_columns(path, &hf, &c);
        (c, unread)
    } else {
        (positional, None)
    };
    Ok(Layout {
        delim: s.delim,
        has_header: s.has_header,
        columns,
        unread,
        header_line: s.header_line,
        n_fields: s.n_fields,
    })
}

/// Calls `f` with the header names each role answers to: the one given in the options, or
/// the known ones.
fn with_names<R>(opts: &GenericOptions, f: impl FnOnce(&ColumnNames<'_>) -> R) -> R {
    fn one<'a>(o: &'a Option<String>, known: &'static [&'static str]) -> Vec<&'a str> {
        match o {
            Some(n) => vec![n.as_str()],
            None => known.to_vec(),
        }
    }
    let (u, i, r, t) = (
        one(&opts.user_col, USER),
        one(&opts.item_col, ITEM),
        one(&opts.rating_col, RATING),
        one(&opts.timestamp_col, TIMESTAMP),
    );
    f(&ColumnNames {
        user: &u,
        item: &i,
        rating: &r,
        timestamp: &t,
        rating_required: opts.rating_col.is_some(),
    })
}

/// Reads interactions from a generic file into `b`. Returns whether it had ratings and
/// timestamps.
pub fn read_ratings(
    path: &Path,
    opts: &GenericOptions,
    b: &mut DatasetBuilder,
) -> Result<(bool, bool)> {
    let l = layout(path, opts)?;
    if let Some(n) = l.unread {
        b.note(n);
    }
    with_names(opts, |names| {
        let spec = InterSpec {
            delim: l.delim,
            header: l.has_header.then_some((names, false)),
            columns: l.columns.clone(),
            rating_range: None,
            comments: true,
            expected: "delimited user,item[,rating[,timestamp]] rows",
            fields: l.n_fields,
        };
        read_interactions(path, &spec, b)
    })
    .map_err(|e| name_hint(e, false, l.header_line))?;
    Ok((l.columns.rating.is_some(), l.columns.timestamp.is_some()))
}

/// A note when the header has columns that no role took while the rating or the timestamp role
/// went without one: `Book-Rating` left unread would make every row an implicit positive
/// without a word. Extra columns beside all four roles are only extra.
fn unread_columns(path: &Path, header: &[Cow<'_, str>], c: &Columns) -> Option<String> {
    let taken = [Some(c.user), Some(c.item), c.rating, c.timestamp];
    let unread: Vec<String> = (header.iter().enumerate())
        .filter(|(k, _)| !taken.contains(&Some(*k)))
        .map(|(_, f)| format!("{:?}", f.trim()))
        .collect();
    let mut missing = Vec::new();
    if c.rating.is_none() {
        missing.push("no rating column, so every row is an implicit positive of weight 1 (--rating-col names one)");
    }
    if c.timestamp.is_none() {
        missing.push("no timestamp column, so nothing has a time order (leave-last splits, the first-ratings map; --timestamp-col names one)");
    }
    if unread.is_empty() || missing.is_empty() {
        return None;
    }
    Some(format!(
        "{}: column{} {} not read: {}",
        path.display(),
        if unread.len() == 1 { "" } else { "s" },
        unread.join(", "),
        missing.join("; ")
    ))
}

/// Adds to a header error how to name the columns by hand, and the header's line number (below
/// any blank or comment lines).
fn name_hint(e: Error, header_by_rating: bool, line: usize) -> Error {
    match e.header_at_line(line) {
        Error::Header {
            path,
            line,
            expected,
            found,
        } => Error::Header {
            path,
            line,
            expected: format!(
                "{expected}, or the names given with --user-col and --item-col{}",
                if header_by_rating {
                    ", or, were that line a row and not a header, a number as its rating (third field)"
                } else {
                    ""
                }
            ),
            found,
        },
        e => e,
    }
}

/// Reads `items.tsv` and `users.tsv` from `dir` when present (the layout [`write_dir`] writes).
pub fn read_side(dir: &Path, b: &mut DatasetBuilder) -> Result<()> {
    let ipath = dir.join("items.tsv");
    if ipath.exists() {
        for_each_record(&ipath, Delimiter::Tab, true, |ctx, f| {
            ctx.need_fields(f.len(), 4, Delimiter::Tab)?;
            let id = ctx.id("item", &f[0])?;
            let gs: Vec<&str> = f[2].split('|').filter(|g| !g.trim().is_empty()).collect();
            let year = match f[3].trim() {
                "" => None,
                y => Some(ctx.small_uint("year", y)?),
            };
            b.item(id, non_empty(&f[1]), &gs, year);
            Ok(())
        })?;
        b.source(ipath);
    }
    let upath = dir.join("users.tsv");
    if upath.exists() {
        super::common::read_users(&upath, Delimiter::Tab, true, b)?;
    }
    Ok(())
}

/// Writes interactions as a headed TSV file (`user`, `item`, then `rating` and `timestamp` when
/// the dataset has them).
pub fn write_ratings(ds: &Dataset, path: &Path) -> Result<()> {
    write_text(path, |w| {
        let mut head = vec!["user", "item"];
        if ds.has_ratings {
            head.push("rating");
        }
        if ds.has_timestamps {
            head.push("timestamp");
        }
        writeln!(w, "{}", head.join("\t"))?;
        for x in &ds.interactions {
            write!(w, "{}\t{}", ds.users.ext(x.user), ds.items.ext(x.item))?;
            if ds.has_ratings {
                write!(w, "\t{}", fmt_rating(x.rating))?;
            }
            if ds.has_timestamps {
                write!(w, "\t{}", x.timestamp)?;
            }
            writeln!(w)?;
        }
        Ok(())
    })
}

/// Writes `ratings.tsv` plus `items.tsv` and `users.tsv` side files into `dir`.
pub fn write_dir(ds: &Dataset, dir: &Path) -> Result<()> {
    write_ratings(ds, &dir.join("ratings.tsv"))?;
    write_side(ds, dir)
}

/// Writes the `items.tsv` and `users.tsv` side files (whichever the dataset has) into `dir`,
/// where the generic reader finds them next to any ratings file.
pub fn write_side(ds: &Dataset, dir: &Path) -> Result<()> {
    if let Some(info) = &ds.item_info {
        write_text(&dir.join("items.tsv"), |w| {
            writeln!(w, "item\ttitle\tgenres\tyear")?;
            for i in 0..ds.n_items() {
                writeln!(
                    w,
                    "{}\t{}\t{}\t{}",
                    ds.items.ext(i as u32),
                    opt(&info.titles[i]).replace('\t', " "),
                    ds.genres_of(i as u32).join("|"),
                    opt(&info.years[i])
                )?;
            }
            Ok(())
        })?;
    }
    super::common::write_users(
        ds,
        &dir.join("users.tsv"),
        "\t",
        Some("user\tage\tgender\toccupation\tzip"),
    )?;
    Ok(())
}
