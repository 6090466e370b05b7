//! GroupLens MovieLens-1M: `ratings.dat`, `movies.dat` and `users.dat`, `::`-separated, Latin-1.

use std::path::Path;

use super::common::{for_each_record, non_empty, opt, write_text, Columns, InterSpec};
use crate::data::dataset::{Dataset, DatasetBuilder};
use crate::data::text::{year_from_title, Delimiter};
use crate::error::Result;

/// Occupation codes of `users.dat` (README of ml-1m).
pub const OCCUPATIONS: [&str; 21] = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
];

/// The layout of `ratings.dat`.
pub fn ratings_spec() -> InterSpec<'static> {
    InterSpec {
        delim: Delimiter::DoubleColon,
        header: None,
        columns: Columns::UDATA,
        rating_range: Some((1.0, 5.0)),
        comments: false,
        fields: 4,
        expected: "lines of UserID::MovieID::Rating::Timestamp",
    }
}

/// Reads `movies.dat` and `users.dat` from `dir` when present.
pub fn read_side(dir: &Path, b: &mut DatasetBuilder) -> Result<()> {
    let mpath = dir.join("movies.dat");
    if mpath.exists() {
        for_each_record(&mpath, Delimiter::DoubleColon, false, |ctx, f| {
            ctx.need_fields(f.len(), 3, Delimiter::DoubleColon)?;
            let id = ctx.id("MovieID", &f[0])?;
            let title = non_empty(&f[1]);
            let year = title.as_deref().and_then(year_from_title);
            let gs: Vec<&str> = f[2].split('|').filter(|g| !g.trim().is_empty()).collect();
            b.item(id, title, &gs, year);
            Ok(())
        })?;
        b.source(mpath);
    }
    let upath = dir.join("users.dat");
    if upath.exists() {
        for_each_record(&upath, Delimiter::DoubleColon, false, |ctx, f| {
            ctx.need_fields(f.len(), 5, Delimiter::DoubleColon)?;
            let id = ctx.id("UserID", &f[0])?;
            let age = match f[2].trim() {
                "" => None,
                a => Some(ctx.small_uint("Age", a)?),
            };
            let occ = f[3].trim();
            let occupation = match occ.parse::<usize>() {
                Ok(code) if code < OCCUPATIONS.len() => Some(OCCUPATIONS[code].to_string()),
                _ => non_empty(occ),
            };
            b.user(id, age, non_empty(&f[1]), occupation, non_empty(&f[4]));
            Ok(())
        })?;
        b.source(upath);
    }
    Ok(())
}

/// Writes `ds` as `ratings.dat`, `movies.dat` and `users.dat`.
pub fn write_dir(ds: &Dataset, dir: &Path) -> Result<()> {
    super::common::write_ratings(ds, &dir.join("ratings.dat"), "::", None, false)?;
    if let Some(info) = &ds.item_info {
        write_text(&dir.join("movies.dat"), |w| {
            for i in 0..ds.n_items() {
                let gs: Vec<&str> = ds.genres_of(i as u32);
                writeln!(
                    w,
                    "{}::{}::{}",
                    ds.items.ext(i as u32),
                    opt(&info.titles[i]),
                    gs.join("|")
                )?;
            }
            Ok(())
        })?;
    }
    if let Some(info) = &ds.user_info {
        write_text(&dir.join("users.dat"), |w| {
            for u in 0..ds.n_users() {
                let occ = info.occupations[u]
                    .as_deref()
                    .map(|o| match OCCUPATIONS.iter().position(|x| *x == o) {
                        Some(code) => code.to_string(),
                        None => o.to_string(),
                    })
                    .unwrap_or_default();
                writeln!(
                    w,
                    "{}::{}::{}::{}::{}",
                    ds.users.ext(u as u32),
                    opt(&info.genders[u]),
                    opt(&info.ages[u]),
                    occ,
                    opt(&info.zips[u])
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}
