//! MovieLens CSV (ml-latest-small, ml-20m, ml-25m, ml-32m): `ratings.csv`
//! (`userId,movieId,rating,timestamp`) and `movies.csv` (`movieId,title,genres`, quoted titles,
//! `|`-separated genres).

use std::path::Path;

use super::common::{for_each_record, non_empty, opt, write_text, ColumnNames, Columns, InterSpec};
use crate::data::dataset::{Dataset, DatasetBuilder};
use crate::data::text::{csv_quote, year_from_title, Delimiter};
use crate::error::{Error, Result};

const NAMES: ColumnNames<'static> = ColumnNames {
    user: &["userId"],
    item: &["movieId"],
    rating: &["rating"],
    timestamp: &["timestamp"],
    rating_required: true,
};

/// The layout of `ratings.csv`.
pub fn ratings_spec() -> InterSpec<'static> {
    InterSpec {
        delim: Delimiter::Comma,
        header: Some((&NAMES, false)),
        columns: Columns::UDATA,
        rating_range: Some((0.5, 5.0)),
        comments: false,
        fields: 4,
        expected: "rows of userId,movieId,rating,timestamp",
    }
}

/// Reads `movies.csv` from `dir` when present.
pub fn read_side(dir: &Path, b: &mut DatasetBuilder) -> Result<()> {
    let mpath = dir.join("movies.csv");
    if mpath.exists() {
        let header = for_each_record(&mpath, Delimiter::Comma, true, |ctx, f| {
            ctx.need_fields(f.len(), 3, Delimiter::Comma)?;
            let id = ctx.id("movieId", &f[0])?;
            let title = non_empty(&f[1]);
            let year = title.as_deref().and_then(year_from_title);
            let gs: Vec<&str> = f[2]
                .split('|')
                .map(str::trim)
                .filter(|g| !g.is_empty() && *g != "(no genres listed)")
                .collect();
            b.item(id, title, &gs, year);
            Ok(())
        })?;
        if header.first().map(|s| s.trim()) != Some("movieId") {
            return Err(Error::Header {
                path: mpath,
                line: 1,
                expected: "movieId,title,genres".into(),
                found: header.iter().map(|h| h.trim().to_string()).collect(),
            });
        }
        b.source(mpath);
    }
    Ok(())
}

/// Writes `ds` as `ratings.csv` and `movies.csv`.
pub fn write_dir(ds: &Dataset, dir: &Path) -> Result<()> {
    super::common::write_ratings(
        ds,
        &dir.join("ratings.csv"),
        ",",
        Some("userId,movieId,rating,timestamp"),
        true,
    )?;
    if let Some(info) = &ds.item_info {
        write_text(&dir.join("movies.csv"), |w| {
            writeln!(w, "movieId,title,genres")?;
            for i in 0..ds.n_items() {
                let gs = ds.genres_of(i as u32);
                let genres = if gs.is_empty() {
                    "(no genres listed)".to_string()
                } else {
                    gs.join("|")
                };
                writeln!(
                    w,
                    "{},{},{}",
                    csv_quote(ds.items.ext(i as u32)),
                    csv_quote(&opt(&info.titles[i])),
                    csv_quote(&genres)
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}
