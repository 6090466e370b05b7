//! GroupLens MovieLens-100K: `u.data` (tab-separated user, item, rating, timestamp; also the
//! `u1.base`…`ub.test` split files), `u.item` (`|`-separated, Latin-1, one flag per genre in the
//! order of `u.genre`) and `u.user` (id, age, gender, occupation, zip).

use std::path::Path;

use super::common::{for_each_record, non_empty, opt, write_text, Columns, InterSpec};
use crate::data::dataset::{Dataset, DatasetBuilder};
use crate::data::text::{year_from_title, Delimiter};
use crate::error::Result;

/// The 19 genres of `u.genre`, in flag order.
pub const GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The layout of `u.data` and of the split files.
pub fn ratings_spec() -> InterSpec<'static> {
    InterSpec {
        delim: Delimiter::Whitespace,
        header: None,
        columns: Columns::UDATA,
        rating_range: Some((1.0, 5.0)),
        comments: false,
        fields: 4,
        expected: "lines of user<TAB>item<TAB>rating<TAB>timestamp",
    }
}

/// Reads `u.genre`, `u.item` and `u.user` from `dir` when present.
pub fn read_side(dir: &Path, b: &mut DatasetBuilder) -> Result<()> {
    let mut genres: Vec<String> = GENRES.iter().map(|s| s.to_string()).collect();
    let gpath = dir.join("u.genre");
    if gpath.exists() {
        let mut named: Vec<(usize, String)> = Vec::new();
        for_each_record(&gpath, Delimiter::Pipe, false, |ctx, f| {
            ctx.need_fields(f.len(), 2, Delimiter::Pipe)?;
            let idx = ctx.small_uint("genre index", &f[1])? as usize;
            named.push((idx, ctx.id("genre", &f[0])?.to_string()));
            Ok(())
        })?;
        named.sort();
        genres = named.into_iter().map(|(_, n)| n).collect();
    }
    for g in &genres {
        b.genre(g);
    }
    let ipath = dir.join("u.item");
    if ipath.exists() {
        let n_fields = 5 + genres.len();
        for_each_record(&ipath, Delimiter::Pipe, false, |ctx, f| {
            ctx.need_fields(f.len(), n_fields, Delimiter::Pipe)?;
            let id = ctx.id("movie id", &f[0])?;
            let title = non_empty(&f[1]);
            let date = f[2].trim();
            let year = if date.len() >= 4 {
                // The year is the last four characters (`01-Jan-1995`); a damaged date whose
                // tail is not four ASCII digits is refused whole.
                let tail = date.get(date.len() - 4..).unwrap_or(date);
                Some(ctx.small_uint("release date", tail)?)
            } else {
                title.as_deref().and_then(year_from_title)
            };
            let mut gs: Vec<&str> = Vec::new();
            for (k, g) in genres.iter().enumerate() {
                match f[5 + k].trim() {
                    "1" => gs.push(g),
                    "0" => {}
                    other => return Err(ctx.parse_err(g, "a genre flag 0 or 1", other)),
                }
            }
            b.item(id, title, &gs, year);
            Ok(())
        })?;
        b.source(ipath);
    }
    let upath = dir.join("u.user");
    if upath.exists() {
        super::common::read_users(&upath, Delimiter::Pipe, false, b)?;
    }
    Ok(())
}

/// Writes `ds` as `u.data`, `u.genre`, `u.item` and `u.user` into `dir`.
pub fn write_dir(ds: &Dataset, dir: &Path) -> Result<()> {
    super::common::write_ratings(ds, &dir.join("u.data"), "\t", None, false)?;
    if let Some(info) = &ds.item_info {
        let names: Vec<&str> = if ds.genre_names.is_empty() {
            GENRES.to_vec()
        } else {
            ds.genre_names.iter().map(|s| s.as_str()).collect()
        };
        write_text(&dir.join("u.genre"), |w| {
            for (k, g) in names.iter().enumerate() {
                writeln!(w, "{g}|{k}")?;
            }
            writeln!(w)
        })?;
        write_text(&dir.join("u.item"), |w| {
            for i in 0..ds.n_items() {
                let date = info.years[i]
                    .map(|y| format!("01-{}-{y}", MONTHS[0]))
                    .unwrap_or_default();
                let mut flags = vec!["0"; names.len()];
                for &g in &info.genres[i] {
                    flags[g as usize] = "1";
                }
                writeln!(
                    w,
                    "{}|{}|{}||{}",
                    ds.items.ext(i as u32),
                    opt(&info.titles[i]),
                    date,
                    {
                        let mut s = String::new();
                        for f in &flags {
                            s.push('|');
                            s.push_str(f);
                        }
                        s
                    }
                )?;
            }
            Ok(())
        })?;
    }
    super::common::write_users(ds, &dir.join("u.user"), "|", None)?;
    Ok(())
}
