//! The batch outputs of `recommend-all` and `similar --all`: `.tsv`, `.jsonl` or `.npy` lists,
//! written block by block as they are scored, and `--shard` ranges.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::serve_cmd::item_info;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::score::Scored;
use crate::store::atomic::{commit_together, AtomicFile};
use crate::store::npy::NpyWriter;
use crate::store::Model;

/// Parses `i/n` into the user range of shard i.
pub fn shard_range(s: &str, n_users: usize) -> Result<std::ops::Range<usize>> {
    let bad = || {
        Error::invalid(
            "--shard",
            format!("{s:?}: expected i/n with 0 ≤ i < n, e.g. 3/16"),
        )
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok(i * n_users / n..(i + 1) * n_users / n)
}

/// The extension of a batch output file, which must be `.tsv`, `.jsonl` or `.npy`.
pub(super) fn batch_ext(out: &Path) -> Result<&str> {
    match out.extension().and_then(|e| e.to_str()) {
        Some(ext @ ("tsv" | "jsonl" | "npy")) => Ok(ext),
        _ => Err(Error::invalid(
            "--out",
            format!("{}: expected a .tsv, .jsonl or .npy file", out.display()),
        )),
    }
}

/// Scores `rows` a block at a time into `sink`, so memory does not grow with the rows, and
/// renames the output into place; returns the seconds spent scoring alone.
pub(super) fn write_batch(
    mut sink: RecSink<'_>,
    rows: &[u32],
    what: &'static str,
    mut score: impl FnMut(&[u32]) -> Result<Vec<Vec<Scored>>>,
) -> Result<f64> {
    let bar = crate::progress::count_bar(rows.len() as u64, what);
    let mut secs = 0.0;
    for chunk in rows.chunks(4096) {
        let start = std::time::Instant::now();
        let lists = score(chunk)?;
        secs += start.elapsed().as_secs_f64();
        sink.write(chunk, &lists)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    sink.finish()?;
    Ok(secs)
}

/// "wrote OUT", with the files written beside a `.npy`.
pub(super) fn wrote(out: &Path, ext: &str, rows: Rows<'_>) -> String {
    let beside = match ext {
        "npy" => {
            let (r, i, s) = npy_companions(out, rows);
            format!(" with {}, {} and {}", r.display(), i.display(), s.display())
        }
        _ => String::new(),
    };
    format!("wrote {}{beside}", out.display())
}

/// The files `recommend-all --out OUT.npy` writes beside it: OUT.users.txt (the user id of
/// each row), OUT.items.txt (the item id of each item row) and OUT.scores.npy; for
/// `similar --all` the row ids are in OUT.rows.txt.
pub fn npy_companions(path: &Path, rows: Rows<'_>) -> (PathBuf, PathBuf, PathBuf) {
    (
        path.with_extension(match rows {
            Rows::Users | Rows::Named(_) => "users.txt",
            Rows::Items => "rows.txt",
        }),
        path.with_extension("items.txt"),
        path.with_extension("scores.npy"),
    )
}

/// What the rows of a batch output are: users (`recommend-all`, each with its recommended
/// items) or items (`similar --all`, each with the items most like it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows<'a> {
    /// The model's users, by dense id.
    Users,
    /// The model's items, by dense id.
    Items,
    /// Users named by position in the list (`--fold-in`'s users, who may be new).
    Named(&'a [String]),
}

impl Rows<'_> {
    /// The column (and JSON key) naming a row, and the JSON key of its list.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Rows::Users | Rows::Named(_) => ("user", "items"),
            Rows::Items => ("item", "similar"),
        }
    }

    /// The external id of row `r`.
    fn id(self, model: &Model, idx: Option<&Index>, r: u32) -> String {
        match self {
            Rows::Users => model.meta.user_ids[r as usize].clone(),
            Rows::Items => item_info(model, idx, r).0,
            Rows::Named(names) => names[r as usize].clone(),
        }
    }
}

/// Where `recommend-all` writes, block by block: a text file (`.tsv`, `.jsonl`), or the `.npy`
/// item rows with their scores and id lists. Nothing is renamed into place before
/// [`RecSink::finish`].
pub(super) enum RecSink<'a> {
    Text {
        file: AtomicFile,
        jsonl: bool,
        rows: Rows<'a>,
        model: &'a Model,
        idx: Option<&'a Index>,
    },
    Npy(Box<NpyOut>),
}

/// The `.npy` side of [`RecSink`]: the id lists, the item rows and their scores.
pub(super) struct NpyOut {
    ids: [AtomicFile; 2],
    rows: NpyWriter<i64>,
    scores: NpyWriter<f32>,
    k: usize,
}

impl<'a> RecSink<'a> {
    pub(super) fn create(
        path: &Path,
        ext: &str,
        model: &'a Model,
        idx: Option<&'a Index>,
        rows: Rows<'a>,
        users: &[u32],
        k: usize,
    ) -> Result<Self> {
        if ext != "npy" {
            let mut file = AtomicFile::create(path)?;
            let jsonl = ext == "jsonl";
            if !jsonl {
                let header = match rows {
                    Rows::Users | Rows::Named(_) => "user\trank\titem\tscore",
                    Rows::Items => "item\trank\tsimilar\tscore",
                };
                writeln!(file, "{header}").map_err(|e| Error::io(path, e))?;
            }
            return Ok(RecSink::Text {
                file,
                jsonl,
                rows,
                model,
                idx,
            });
        }
        // The ids of the rows (users) and of the item rows, beside the arrays. The four files
        // are committed together when every user is written (`commit_together`): a failed run
        // leaves the previous run's files as they were, and a crash while renaming leaves no
        // item rows rather than old ones beside new ids.
        let (users_txt, items_txt, scores_npy) = npy_companions(path, rows);
        let mut user_ids = AtomicFile::create(&users_txt)?;
        (users.iter())
            .try_for_each(|&u| writeln!(user_ids, "{}", rows.id(model, idx, u)))
            .map_err(|e| Error::io(&users_txt, e))?;
        let mut item_ids = AtomicFile::create(&items_txt)?;
        let n_rows = model.n_items() + idx.map_or(0, |i| i.meta.appended.len());
        (0..n_rows as u32)
            .try_for_each(|i| writeln!(item_ids, "{}", item_info(model, idx, i).0))
            .map_err(|e| Error::io(&items_txt, e))?;
        Ok(RecSink::Npy(Box::new(NpyOut {
            ids: [user_ids, item_ids],
            rows: NpyWriter::create(path, &[users.len(), k])?,
            scores: NpyWriter::create(&scores_npy, &[users.len(), k])?,
            k,
        })))
    }

    /// Writes the lists of `users` (one per user, in order).
    fn write(&mut self, users: &[u32], lists: &[Vec<Scored>]) -> Result<()> {
        match self {
            RecSink::Text {
                file,
                jsonl,
                rows,
                model,
                idx,
            } => {
                let name = |i: u32| item_info(model, *idx, i).0;
                let (row_key, list_key) = rows.keys();
                let mut put = || -> std::io::Result<()> {
                    for (u, list) in users.iter().zip(lists) {
                        let user = rows.id(model, *idx, *u);
                        if *jsonl {
                            let items: Vec<String> = list.iter().map(|s| name(s.item)).collect();
                            let scores: Vec<f32> = list.iter().map(|s| s.score).collect();
                            let line = serde_json::json!({ row_key: user, list_key: items, "scores": scores });
                            writeln!(file, "{line}")?;
                        } else {
                            for (r, s) in list.iter().enumerate() {
                                writeln!(file, "{user}\t{}\t{}\t{}", r + 1, name(s.item), s.score)?;
                            }
                        }
                    }
                    Ok(())
                };
                put().map_err(|e| Error::io(file.path(), e))
            }
            RecSink::Npy(out) => {
                let NpyOut {
                    rows, scores, k, ..
                } = out.as_mut();
                let mut r = vec![-1i64; users.len() * *k];
                let mut v = vec![f32::NAN; users.len() * *k];
                for (u, list) in lists.iter().enumerate() {
                    for (j, s) in list.iter().enumerate() {
                        r[u * *k + j] = s.item as i64;
                        v[u * *k + j] = s.score;
                    }
                }
                rows.append(&r)?;
                scores.append(&v)
            }
        }
    }

    /// Renames what was written into place.
    fn finish(self) -> Result<()> {
        match self {
            RecSink::Text { file, .. } => file.commit(),
            RecSink::Npy(out) => {
                let NpyOut {
                    ids, rows, scores, ..
                } = *out;
                let [users, items] = ids;
                let companions = vec![users, items, scores.into_file()?];
                commit_together(rows.into_file()?, companions)
            }
        }
    }
}
