//! RecBole atomic files: `NAME.inter`, `NAME.item` and `NAME.user`, tab-separated, with a typed
//! header such as `user_id:token`. Genres are the space-separated `class:token_seq` column and the
//! year is `release_year`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::common::{
    for_each_record, non_empty, opt, read_interactions, write_text, ColumnNames, Columns, InterSpec,
};
use crate::data::dataset::{Dataset, DatasetBuilder};
use crate::data::text::Delimiter;
use crate::error::{Error, Result};

const NAMES: ColumnNames<'static> = ColumnNames {
    user: &["user_id"],
    item: &["item_id"],
    rating: &["rating"],
    timestamp: &["timestamp"],
    rating_required: false,
};

/// The `.inter` file of `dir` (there must be exactly one).
pub fn find_inter(dir: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in rd {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "inter") {
            found.push(p);
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::UnknownFormat {
            path: dir.to_path_buf(),
            looked_for: "a RecBole NAME.inter file".into(),
        }),
        _ => Err(Error::invalid(
            "dataset directory",
            format!(
                "{} holds several .inter files ({}); pass one with --data FILE",
                dir.display(),
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn check_typed(path: &Path, header: &[String]) -> Result<()> {
    if header.is_empty() || !header.iter().all(|h| h.contains(':')) {
        return Err(Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: "typed RecBole columns such as user_id:token".into(),
            found: header.to_vec(),
        });
    }
    Ok(())
}

/// Reads an `.inter` file (header first).
pub fn read_inter(path: &Path, b: &mut DatasetBuilder) -> Result<()> {
    // Check the header is typed before the generic loop resolves its columns.
    let mut rdr = crate::data::text::LineReader::open(path)?;
    if let Some((_, first)) = rdr.next_line()? {
        let header: Vec<String> = first.split('\t').map(|s| s.to_string()).collect();
        check_typed(path, &header)?;
    }
    let spec = InterSpec {
        delim: Delimiter::Tab,
        header: Some((&NAMES, true)),
        columns: Columns::UDATA,
        rating_range: None,
        comments: false,
        fields: 4,
        expected: "tab-separated rows under a user_id:token, item_id:token header",
    };
    read_interactions(path, &spec, b)
}

fn col(header: &[String], name: &str) -> Option<usize> {
    header
        .iter()
        .position(|h| h.split(':').next().unwrap_or("") == name)
}

fn get<'a>(f: &'a [Cow<'a, str>], c: Option<usize>) -> &'a str {
    c.and_then(|c| f.get(c)).map(|s| s.as_ref()).unwrap_or("")
}

/// Reads `NAME.item` and `NAME.user` next to the `.inter` file when present.
pub fn read_side(inter: &Path, b: &mut DatasetBuilder) -> Result<()> {
    let ipath = inter.with_extension("item");
    if ipath.exists() {
        let header = header_of(&ipath)?;
        let id_c = col(&header, "item_id").ok_or_else(|| Error::Header {
            path: ipath.clone(),
            line: 1,
            expected: "an item_id:token column".into(),
            found: header.to_vec(),
        })?;
        let (title_c, year_c, class_c) = (
            col(&header, "movie_title"),
            col(&header, "release_year"),
            col(&header, "class"),
        );
        for_each_record(&ipath, Delimiter::Tab, true, |ctx, f| {
            ctx.need_fields(f.len(), id_c + 1, Delimiter::Tab)?;
            let id = ctx.id("item_id", &f[id_c])?;
            // `release_year` is a token column: RecBole's own ml-100k writes "unkonwn" for item
            // 267. A token that is not a year means "year unknown", not a broken file.
            let year = get(f, year_c).trim().parse::<u16>().ok();
            let gs: Vec<&str> = get(f, class_c).split_whitespace().collect();
            b.item(id, non_empty(get(f, title_c)), &gs, year);
            Ok(())
        })?;
        b.source(ipath);
    }
    let upath = inter.with_extension("user");
    if upath.exists() {
        let header = header_of(&upath)?;
        let id_c = col(&header, "user_id").ok_or_else(|| Error::Header {
            path: upath.clone(),
            line: 1,
            expected: "a user_id:token column".into(),
            found: header.to_vec(),
        })?;
        let cols = ["age", "gender", "occupation", "zip_code"].map(|n| col(&header, n));
        for_each_record(&upath, Delimiter::Tab, true, |ctx, f| {
            ctx.need_fields(f.len(), id_c + 1, Delimiter::Tab)?;
            let id = ctx.id("user_id", &f[id_c])?;
            let age = match get(f, cols[0]).trim() {
                "" => None,
                a => Some(ctx.small_uint("age", a)?),
            };
            b.user(
                id,
                age,
                non_empty(get(f, cols[1])),
                non_empty(get(f, cols[2])),
                non_empty(get(f, cols[3])),
            );
            Ok(())
        })?;
        b.source(upath);
    }
    Ok(())
}

fn header_of(path: &Path) -> Result<Vec<String>> {
    let mut rdr = crate::data::text::LineReader::open(path)?;
    let header: Vec<String> = match rdr.next_line()? {
        Some((_, l)) => l.split('\t').map(|s| s.trim().to_string()).collect(),
        None => {
            return Err(Error::EmptyFile {
                path: path.to_path_buf(),
                expected: "a typed RecBole header".into(),
            })
        }
    };
    check_typed(path, &header)?;
    Ok(header)
}

/// Writes `ds` as `NAME.inter`, `NAME.item` and `NAME.user` in `dir`.
pub fn write_dir(ds: &Dataset, dir: &Path, name: &str) -> Result<()> {
    super::common::write_ratings(
        ds,
        &dir.join(format!("{name}.inter")),
        "\t",
        Some("user_id:token\titem_id:token\trating:float\ttimestamp:float"),
        false,
    )?;
    if let Some(info) = &ds.item_info {
        write_text(&dir.join(format!("{name}.item")), |w| {
            writeln!(
                w,
                "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"
            )?;
            for i in 0..ds.n_items() {
                let gs: Vec<String> = ds
                    .genres_of(i as u32)
                    .iter()
                    .map(|g| g.replace(' ', "_"))
                    .collect();
                writeln!(
                    w,
                    "{}\t{}\t{}\t{}",
                    ds.items.ext(i as u32),
                    opt(&info.titles[i]).replace('\t', " "),
                    opt(&info.years[i]),
                    gs.join(" ")
                )?;
            }
            Ok(())
        })?;
    }
    super::common::write_users(
        ds,
        &dir.join(format!("{name}.user")),
        "\t",
        Some("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"),
    )?;
    Ok(())
}
