//! Attribute files: categorical side features for any dataset (`--item-features FILE`,
//! `--user-features FILE`).
//!
//! A delimited file with a header row (the delimiter is sniffed from it: tab, `::`, comma or
//! semicolon, `|` or spaces). The first column is the item (or user) id, as in the interaction
//! file; every other column, or the ones named with `--item-feature-cols`, is a categorical
//! attribute. A cell may hold several values, separated by `|` (by `;` when the file itself is
//! `|`-delimited); an empty cell means no value. An id may appear on several rows (the long
//! `item,tag` layout): its values accumulate. Each value becomes the feature `column:value`, so a
//! column named `genre` adds to the genres of the MovieLens formats.
//!
//! Columns declared numeric (`--item-numeric-cols price`) hold one finite number per cell (or
//! none); their values are interpolated between quantile knots instead
//! ([`crate::data::features::Knots`]), so a value no training row had still has a vector.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::common::for_each_record;
use crate::data::dataset::DatasetBuilder;
use crate::data::features::BUILT_IN_KINDS;
use crate::data::text::{Delimiter, LineReader};
use crate::error::{Error, Result};

/// An attribute file and the columns to use.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeFile {
    pub path: PathBuf,
    /// Columns to use as features (by header name); `None` uses every column but the id.
    pub columns: Option<Vec<String>>,
    /// Columns (by header name, among those used) whose values are numbers.
    pub numeric: Vec<String>,
}

/// Which side an attribute file describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Item,
    User,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Item => "item",
            Entity::User => "user",
        }
    }
}

/// The delimiter and column names of an attribute file's header line.
fn header(path: &Path) -> Result<(Delimiter, Vec<String>)> {
    let mut rdr = LineReader::open(path)?;
    let Some((line_no, line)) = rdr.next_line()? else {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            expected: "a header row (id column first, then attribute columns)".into(),
        });
    };
    let ctx = crate::data::text::Ctx {
        path,
        line: line_no,
    };
    let delim = Delimiter::sniff(line).ok_or_else(|| Error::Header {
        path: path.to_path_buf(),
        line: 1,
        expected: "an id column and at least one attribute column, delimited by tab, ::, comma, semicolon, | or spaces".into(),
        found: vec![line.trim().to_string()],
    })?;
    let mut fields: Vec<Cow<'_, str>> = Vec::new();
    delim
        .split(line, &mut fields)
        .map_err(|e| ctx.parse_err("header", "a delimited header", &e))?;
    Ok((delim, fields.iter().map(|f| f.trim().to_string()).collect()))
}

/// Reads an attribute file into `b` as item or user tags.
pub fn read(file: &AttributeFile, entity: Entity, b: &mut DatasetBuilder) -> Result<()> {
    let path = file.path.as_path();
    let (delim, names) = header(path)?;
    let position = |c: &String| {
        names
            .iter()
            .skip(1)
            .position(|n| n == c.trim())
            .map(|k| k + 1)
            .ok_or_else(|| Error::Header {
                path: path.to_path_buf(),
                line: 1,
                expected: format!(
                    "a column named {c:?} (attribute columns: {})",
                    names[1..].join(", ")
                ),
                found: names.clone(),
            })
    };
    let chosen: Vec<usize> = match &file.columns {
        None => (1..names.len()).collect(),
        Some(cols) => cols.iter().map(position).collect::<Result<_>>()?,
    };
    let numeric: Vec<usize> = file.numeric.iter().map(position).collect::<Result<_>>()?;
    // The built-in features' names: `year:1996` beside `year:~1990` would hide the knots.
    if let Some(&c) = (numeric.iter()).find(|&&c| BUILT_IN_KINDS.contains(&names[c].as_str())) {
        return Err(Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: format!(
                "a numeric column not named like a built-in feature ({}); rename {:?} (say, release_{})",
                BUILT_IN_KINDS.join(", "),
                names[c],
                names[c]
            ),
            found: names.clone(),
        });
    }
    if let Some(&c) = numeric.iter().find(|c| !chosen.contains(c)) {
        return Err(Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: format!(
                "numeric column {:?} among the columns used (the feature columns name it too)",
                names[c]
            ),
            found: names.clone(),
        });
    }
    if chosen.is_empty() {
        return Err(Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: format!(
                "an {} id column followed by at least one attribute column",
                entity.name()
            ),
            found: names.clone(),
        });
    }
    let multi = if delim == Delimiter::Pipe { ';' } else { '|' };
    let width = names.len();
    let mut rows = 0usize;
    for_each_record(path, delim, true, |ctx, f| {
        // Exactly one field per header column: an unquoted delimiter inside a value would
        // otherwise shift every later column silently.
        if f.len() != width {
            return Err(Error::FieldCount {
                path: path.to_path_buf(),
                line: ctx.line,
                expected: width,
                found: f.len(),
                delimiter: delim.describe().to_string(),
            });
        }
        let id = ctx.id(entity.name(), &f[0])?;
        let mut tags = Vec::new();
        for &c in &chosen {
            if numeric.contains(&c) {
                let v = delim.decimal(f[c].trim());
                let v = v.as_ref();
                if v.is_empty() {
                    continue;
                }
                if crate::data::features::finite_number(v).is_none() {
                    return Err(ctx.parse_err(
                        &names[c],
                        "one finite number (a numeric column), or an empty cell",
                        v,
                    ));
                }
                tags.push((names[c].clone(), v.to_string()));
                continue;
            }
            for v in f[c].split(multi).map(str::trim).filter(|v| !v.is_empty()) {
                tags.push((names[c].clone(), v.to_string()));
            }
        }
        match entity {
            Entity::Item => b.item_tags(id, tags),
            Entity::User => b.user_tags(id, tags),
        }
        rows += 1;
        Ok(())
    })?;
    if rows == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            expected: format!("rows of {} id and attributes", entity.name()),
        });
    }
    let numeric: Vec<String> = numeric.iter().map(|&c| names[c].clone()).collect();
    match entity {
        Entity::Item => b.item_numeric(&numeric),
        Entity::User => b.user_numeric(&numeric),
    }
    b.source(path.to_path_buf());
    Ok(())
}
