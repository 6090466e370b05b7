//! `lshrec recommend-all`: batch-score the model's users, a list of them, or the users of a
//! ratings file folded in (`--fold-in`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::batch_out::{batch_ext, shard_range, write_batch, wrote, RecSink, Rows};
use super::serve_cmd::{blocked_items, open_index, resolve_list, ModelArgs, SearchArgs};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::recommend::{recommend, recommend_queries, Method};
use crate::store::Model;
use rayon::prelude::*;

/// `lshrec recommend-all`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec recommend-all --model model/ --k 10 --out recs.tsv\n  lshrec recommend-all --model model/ --index model/index --k 20 --out part-3.jsonl --shard 3/16\n  lshrec recommend-all --model model/ --user-list active.txt --exclude-items withdrawn.txt --out recs.npy\n  lshrec recommend-all --model model/ --fold-in since-training.tsv --out new-users.tsv\n  lshrec recommend-all --model model/ --fold-in signups.tsv --first-ratings --fold-in-users signups-people.tsv --out signups-recs.tsv\n\nOutputs: .tsv (user, rank, item, score), .jsonl (one user per line), .npy (int64 item rows, n_users × k, -1 padded), with OUT.users.txt (the user id of each row), OUT.items.txt (the item id of each item row) and OUT.scores.npy (float32, NaN padded) beside it.",
    mut_arg("mode", |a| a.requires("index")),
    mut_arg("probes", |a| a.requires("index")),
    mut_arg("max_candidates", |a| a.requires("index")),
)]
pub struct RecommendAllArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// LSH index directory (default: exact scoring).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// How many items per user (at most the number of items).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Output file: .tsv, .jsonl or .npy.
    #[arg(long)]
    pub out: PathBuf,
    /// Rank every item exactly even when an index is given (the items appended to it too).
    #[arg(long, conflicts_with_all = ["mode", "probes", "max_candidates"])]
    pub exact: bool,
    /// Include items the user already interacted with.
    #[arg(long)]
    pub keep_seen: bool,
    /// Score only the users listed in FILE, one id per line (blank and # lines skipped), in
    /// its order: the OUT.users.txt of an earlier .npy run is such a file. Embeddings given
    /// with --users take row numbers.
    #[arg(long, value_name = "FILE")]
    pub user_list: Option<PathBuf>,
    /// Never recommend the items listed in FILE, one id per line as in --user-list: withdrawn,
    /// out of stock, not licensed here. They are skipped for every user, beside the user's own.
    #[arg(long, value_name = "FILE")]
    pub exclude_items: Option<PathBuf>,
    /// Process only shard i of n (0-based), a contiguous range of users (of --user-list's
    /// users, or --fold-in's, when given).
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Score the users of FILE from its rows rather than from trained vectors: user and item
    /// columns, then optionally rating and timestamp, in any delimited layout, with or without a
    /// header. Each user is folded in
    /// (the iALS user step with the item vectors fixed, as `query --liked` does): a user the
    /// model has training items for, from those and FILE's rows; any other user, from FILE's
    /// rows alone. With a model trained at --min-rating R, a row rated below R is a known negative
    /// (as `query --disliked`). FILE's items are never recommended back unless --keep-seen.
    #[arg(long, value_name = "FILE", conflicts_with = "user_list")]
    pub fold_in: Option<PathBuf>,
    /// With --fold-in: FILE's new users (those the model has no training items for) are
    /// sign-ups, and their rows are their first ratings. Take their vectors from the model's
    /// first-ratings map, as `query --first-ratings` does, instead of the fold-in, which reads
    /// rows as a random sample of the user's taste: on ML-100K's cold users, in time order,
    /// NDCG@10 .50 against .33 from one rating, .47 against .30 from thirty (see the README's
    /// "User cold start"). Rows below the model's --min-rating enter no vector but are not
    /// recommended back; a new user may have only such rows. Users with training items are
    /// folded in as without this flag.
    #[arg(long, requires = "fold_in")]
    pub first_ratings: bool,
    /// With --fold-in: the users' demographics and attributes, for a model trained with user
    /// side information. A delimited file with a header row, the user id first (as an attribute
    /// file for `train --user-features`): a column `age` holds years (1 to 120, bucketed as in
    /// training) or a value the model has (25-34), `gender` and `occupation` are as in the training users file, any other
    /// column is an attribute (as `query --feature COLUMN=VALUE`). Each user's features are
    /// the prior the fold-in pulls toward (`query --age …`), or enter the first-ratings map.
    /// Users listed here without rows in --fold-in's file (sign-ups who rated nothing yet) are
    /// scored from their demographics alone. A column the model has no features for (say,
    /// zip) is left out with a note, and so is a value it never saw (a new occupation), counted;
    /// a file with no column the model knows is an error.
    #[arg(long, value_name = "FILE", requires = "fold_in")]
    pub fold_in_users: Option<PathBuf>,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Print the summary (users, seconds, users/s) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--fold-in`: the users of a ratings file, each with its folded-in query vector and the items
/// not to recommend back.
struct FoldedIn {
    /// Every user of the file, in the file's (natural) id order.
    ids: Vec<String>,
    /// The first user folded in: only the shard's users are (`--shard`).
    first: usize,
    /// `own.len() × d`, row-major: the vectors of users `first..first + own.len()`.
    vectors: Vec<f32>,
    /// Each of those users' items in the file and, for a user the model knows, its training
    /// items; sorted.
    own: Vec<Vec<u32>>,
    /// How many of the users had training items in the model.
    known: usize,
    /// How many users' vectors came from the first-ratings map (`--first-ratings`).
    mapped: usize,
    /// How many values of `--fold-in-users` the model had no feature for (left out).
    unknown_values: usize,
    seconds: f64,
}

/// One user's features: rows of the model's user features, and weights.
type Features = Vec<(usize, f32)>;

/// `--fold-in-users`: the features (rows of the model's user features, and weights) of each
/// user of `ds`, from the attribute columns its users file was read into, and how many values
/// the model does not know.
fn users_file_features(
    path: &Path,
    model: &Model,
    ds: &crate::data::Dataset,
) -> Result<(Vec<Features>, usize)> {
    use std::collections::BTreeSet;
    let names = &model.meta.user_features;
    let columns: BTreeSet<&str> = (names.iter())
        .filter_map(|n| n.split_once(':').map(|(c, _)| c))
        .collect();
    if columns.is_empty() {
        return Err(Error::invalid(
            "--fold-in-users",
            "this model was trained without user side information (no users file or --user-features)",
        ));
    }
    let tags = ds.user_info.as_ref().map_or(&[][..], |i| &i.tags[..]);
    let given: BTreeSet<&str> = (tags.iter().flatten()).map(|(c, _)| c.as_str()).collect();
    let unused: Vec<&str> = given.difference(&columns).copied().collect();
    if unused.len() == given.len() {
        return Err(Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: format!(
                "user columns the model has features for ({}), after the user id",
                columns.iter().copied().collect::<Vec<_>>().join(", ")
            ),
            found: given.iter().map(|c| c.to_string()).collect(),
        });
    }
    if !unused.is_empty() {
        eprintln!(
            "note: the model has no features for column(s) {} of {}; they are left out",
            unused.join(", "),
            path.display()
        );
    }
    let mut unknown = 0;
    let mut out = Vec::with_capacity(ds.n_users());
    for u in 0..ds.n_users() {
        let t = tags.get(u).map_or(&[][..], |t| &t[..]);
        let used = t
            .iter()
            .filter(|(c, _)| columns.contains(c.as_str()))
            .cloned();
        // An age the model knows as it is written (a bucket such as 25-34, or the raw values
        // of an attribute file's `age` column) is an attribute; otherwise it is years.
        let (ages, rest): (Vec<_>, Vec<_>) = used.partition(|(c, v)| {
            c == "age"
                && !names
                    .iter()
                    .any(|n| n.strip_prefix("age:") == Some(v.as_str()))
        });
        let bad_age = |expected: String| -> Result<Option<u16>> {
            let id = ds.users.ext(u as u32);
            Err(Error::Parse {
                path: path.to_path_buf(),
                line: crate::store::read::attribute_line_with(path, id)?,
                field: "age".into(),
                expected,
                found: (ages.iter().map(|a| a.1.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        };
        let age = match &ages[..] {
            [] => None,
            [(_, v)] => match v.parse::<u16>() {
                Ok(a) if (1..=120).contains(&a) => Some(a),
                _ => bad_age("an age in years, 1 to 120, or an age value of the model".into())?,
            },
            _ => bad_age(format!("one age for user {}", ds.users.ext(u as u32)))?,
        };
        let mut pairs = crate::data::features::user_pairs(age, None, None);
        pairs.extend(crate::data::features::tag_pairs(&rest, model.user_knots()));
        let (features, n) = model.known_user_features(&pairs)?;
        unknown += n;
        out.push(features);
    }
    Ok((out, unknown))
}

/// Reads `path`, checking every row, and folds in the users of `shard` (all of them without
/// one; see `RecommendAllArgs::fold_in`).
fn fold_in_file(
    a: &RecommendAllArgs,
    path: &Path,
    model: &Model,
    idx: Option<&Index>,
) -> Result<FoldedIn> {
    use crate::store::read::first_line_with;
    let users_file = a.fold_in_users.as_deref();
    let opts = crate::data::LoadOptions {
        format: Some(crate::data::Format::Generic),
        user_attributes: users_file.map(|p| crate::data::AttributeFile {
            path: p.to_path_buf(),
            columns: None,
            numeric: Vec::new(),
        }),
        // Demographics come from --fold-in-users only: a users.tsv that happens to sit beside
        // FILE (a split directory's training users) is not read.
        no_side_files: true,
        ..Default::default()
    };
    // Refused before the file is read, as `query --first-ratings` refuses it.
    let map = match a.first_ratings {
        true => Some(model.require_first_ratings_map()?),
        false => None,
    };
    let ds = crate::data::load(path, &opts)?;
    super::note_dataset(&ds);
    let min_rating = (model.train_config())
        .and_then(|c| c.min_rating)
        .filter(|_| ds.has_ratings);
    let index = model.item_index();
    let mut rows: Vec<(Vec<u32>, Vec<u32>)> = vec![Default::default(); ds.n_users()];
    for x in &ds.interactions {
        let ext = ds.items.ext(x.item);
        let Some(&i) = index.get(ext) else {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: first_line_with(path, 1, ext)?,
                field: "item".into(),
                expected: match idx.is_some_and(|i| i.meta.appended.iter().any(|a| a.id == ext)) {
                    // Its vector is an estimate from its features, not a trained one: the
                    // fold-in solves against the trained items only.
                    true => format!("an item id of the model ({} items; this one was appended to the index after training, and fold-in reads trained items only: leave its rows out)", model.n_items()),
                    false => format!("an item id of the model ({} items)", model.n_items()),
                },
                found: ext.into(),
            });
        };
        let (liked, disliked) = &mut rows[x.user as usize];
        match min_rating {
            Some(r) if x.rating < r => disliked.push(i),
            _ => liked.push(i),
        }
    }
    let (features, unknown_values) = match users_file {
        Some(f) => users_file_features(f, model, &ds)?,
        None => (vec![Vec::new(); rows.len()], 0),
    };
    let range = match a.shard.as_deref() {
        Some(s) => shard_range(s, rows.len())?,
        None => 0..rows.len(),
    };
    let start = std::time::Instant::now();
    let d = model.dim();
    let solver = crate::train::coldstart::FoldInSolver::new(
        model.items.as_slice(),
        d,
        model.fold_in_config(),
    );
    let bar = crate::progress::count_bar(range.len() as u64, "folding in users");
    // Each user's vector, own items, and how the vector was made; errors are reported in the
    // users' order, so the same file always names the same line.
    #[derive(PartialEq)]
    enum Solved {
        /// Folded in from the file's rows alone.
        New,
        /// Folded in from the model's training items and the file's rows.
        Known,
        /// From the first-ratings map.
        Mapped,
    }
    type User = (Vec<f32>, Vec<u32>, Solved);
    let solved: Vec<Result<User>> = (rows[range.clone()].par_iter().zip(range.clone()))
        .map(|((liked, disliked), u)| {
            let id = ds.users.ext(u as u32);
            let mut liked = liked.clone();
            // A user the model holds with no training items (a test-only id) is new here.
            let trained = match (model.user(id), &model.seen) {
                (Ok(t), Some(seen)) => seen.row(t as usize),
                _ => &[],
            };
            let mut own = [&liked[..], &disliked[..], trained].concat();
            own.sort_unstable();
            own.dedup();
            if let (Some(map), true) = (&map, trained.is_empty()) {
                // A sign-up: its positive rows are its first ratings (none at all is the
                // map's N = 0).
                bar.inc(1);
                return Ok((map.vector(&liked, &features[u])?, own, Solved::Mapped));
            }
            let prior = model.user_feature_vector(&features[u]);
            let rated = !(liked.is_empty() && disliked.is_empty());
            liked.extend(trained.iter().filter(|i| !disliked.contains(i)));
            liked.sort_unstable();
            liked.dedup();
            if let (true, None, false, Some(f)) = (liked.is_empty(), &prior, rated, users_file) {
                // Listed in the users file only, with no value the model knows.
                return Err(Error::Parse {
                    path: f.to_path_buf(),
                    line: crate::store::read::attribute_line_with(f, id)?,
                    field: "user".into(),
                    expected: "a user with rows in the --fold-in file, or a demographic or attribute value the model knows".into(),
                    found: id.into(),
                });
            }
            if liked.is_empty() && prior.is_none() {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: first_line_with(path, 0, id)?,
                    field: "user".into(),
                    expected: format!(
                        "a user with at least one row rated {} or more, to fold in from",
                        min_rating.unwrap_or_default()
                    ),
                    found: id.into(),
                });
            }
            let v = solver.solve(&liked, disliked, prior.as_deref())?;
            bar.inc(1);
            let how = match trained.is_empty() {
                true => Solved::New,
                false => Solved::Known,
            };
            Ok((v, own, how))
        })
        .collect();
    bar.finish_and_clear();
    let mut out = FoldedIn {
        ids: (0..rows.len() as u32)
            .map(|u| ds.users.ext(u).to_string())
            .collect(),
        first: range.start,
        vectors: Vec::with_capacity(range.len() * d),
        own: Vec::with_capacity(range.len()),
        known: 0,
        mapped: 0,
        unknown_values,
        seconds: 0.0,
    };
    for r in solved {
        let (v, own, how) = r?;
        out.vectors.extend_from_slice(&v);
        out.own.push(own);
        out.known += usize::from(how == Solved::Known);
        out.mapped += usize::from(how == Solved::Mapped);
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// `--user-list`: the dense ids of the listed users, in the file's order. A user listed twice
/// is an error (each would get a row), and so is a list with no user.
fn listed_users(path: &Path, model: &Model) -> Result<Vec<u32>> {
    let expected = format!("a user id of the model ({} users)", model.n_users());
    let listed = resolve_list(path, "user id", &expected, |id| model.user(id).ok())?;
    let mut first = std::collections::HashMap::with_capacity(listed.len());
    for &(line, u) in &listed {
        if let Some(earlier) = first.insert(u, line) {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line,
                field: "user id".into(),
                expected: format!("each user once (this one is on line {earlier} too)"),
                found: model.meta.user_ids[u as usize].clone(),
            });
        }
    }
    if listed.is_empty() {
        return Err(Error::invalid(
            "--user-list",
            format!(
                "{}: no user ids (blank and # lines are skipped)",
                path.display()
            ),
        ));
    }
    Ok(listed.into_iter().map(|(_, u)| u).collect())
}

/// Runs `lshrec recommend-all`.
pub fn run_recommend_all(a: RecommendAllArgs) -> Result<()> {
    let model = a.model.open()?;
    let idx = open_index(&a.index, &model)?;
    let listed = match &a.user_list {
        Some(p) => Some(listed_users(p, &model)?),
        None => None,
    };
    let folded = match &a.fold_in {
        Some(p) => Some(fold_in_file(&a, p, &model, idx.as_ref())?),
        None => None,
    };
    let n_listed = match (&listed, &folded) {
        (Some(l), _) => l.len(),
        (_, Some(f)) => f.ids.len(),
        _ => model.n_users(),
    };
    let range = match &a.shard {
        Some(s) => shard_range(s, n_listed)?,
        None => 0..n_listed,
    };
    let ext = batch_ext(&a.out)?;
    // With --exact, the index's appended items are ranked too.
    let method = match &idx {
        Some(i) if !a.exact => Method::Lsh(i, a.search.params(a.k)?),
        i => Method::Exact(i.as_ref()),
    };
    let lsh = matches!(method, Method::Lsh(..));
    let blocked = blocked_items(a.exclude_items.as_deref(), &model, idx.as_ref())?;
    // Rows of the model's users, or positions in --fold-in's list.
    let users: Vec<u32> = match &listed {
        Some(l) => l[range.clone()].to_vec(),
        None => range.clone().map(|u| u as u32).collect(),
    };
    // Written as scored, a block of users at a time, so memory does not grow with the users;
    // users/s counts the scoring alone.
    let rows = folded.as_ref().map_or(Rows::Users, |f| Rows::Named(&f.ids));
    let sink = RecSink::create(&a.out, ext, &model, idx.as_ref(), rows, &users, a.k)?;
    let secs = write_batch(sink, &users, "scoring users", |chunk| match &folded {
        None => recommend(&model, chunk, a.k, method, a.keep_seen, &blocked),
        Some(f) => {
            // Chunks hold positions in the file's users; only the shard's were folded in.
            let d = model.dim();
            let at = |r: u32| r as usize - f.first;
            let q: Vec<f32> = (chunk.iter())
                .flat_map(|&r| &f.vectors[at(r) * d..][..d])
                .copied()
                .collect();
            let own = |r: usize| -> &[u32] {
                match a.keep_seen {
                    true => &[],
                    false => &f.own[at(chunk[r])],
                }
            };
            recommend_queries(&model, &q, a.k, method, &own, &blocked)
        }
    })?;
    if let Some(f) = folded.as_ref().filter(|f| f.unknown_values > 0) {
        eprintln!(
            "note: {} value(s) in {} the model has no feature for (a new occupation, say) were left out",
            f.unknown_values,
            a.fold_in_users.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    if a.json {
        #[derive(Serialize)]
        struct J<'a> {
            out: &'a Path,
            method: &'a str,
            users: usize,
            /// The shard's first user: a row of the model, or a position in --user-list
            /// or --fold-in's users.
            first_user_row: usize,
            user_list: Option<&'a Path>,
            fold_in: Option<&'a Path>,
            /// With --fold-in: how many of its users had training items in the model.
            fold_in_known_users: Option<usize>,
            /// With --first-ratings: how many users' vectors came from the first-ratings map.
            first_ratings_users: Option<usize>,
            fold_in_users: Option<&'a Path>,
            /// With --fold-in-users: its values the model had no feature for (left out).
            unknown_feature_values: Option<usize>,
            fold_in_seconds: Option<f64>,
            excluded_items: usize,
            k: usize,
            seconds: f64,
            users_per_second: f64,
            threads: usize,
        }
        return super::print_json(&J {
            out: &a.out,
            method: method.name(),
            users: users.len(),
            first_user_row: range.start,
            user_list: a.user_list.as_deref(),
            fold_in: a.fold_in.as_deref(),
            fold_in_known_users: folded.as_ref().map(|f| f.known),
            first_ratings_users: (folded.as_ref())
                .filter(|_| a.first_ratings)
                .map(|f| f.mapped),
            fold_in_users: a.fold_in_users.as_deref(),
            unknown_feature_values: (folded.as_ref())
                .filter(|_| a.fold_in_users.is_some())
                .map(|f| f.unknown_values),
            fold_in_seconds: folded.as_ref().map(|f| f.seconds),
            excluded_items: blocked.len(),
            k: a.k,
            seconds: secs,
            users_per_second: users.len() as f64 / secs.max(1e-9),
            threads: rayon::current_num_threads(),
        });
    }
    if let Some(f) = &folded {
        let mapped = match a.first_ratings {
            true => format!(", {} from the first-ratings map", f.mapped),
            false => String::new(),
        };
        eprintln!(
            "folded in {} users from {} ({} of them with training items in the model{mapped}) in {:.2} s",
            f.own.len(),
            a.fold_in.as_deref().unwrap_or(Path::new("")).display(),
            f.known,
            f.seconds
        );
    }
    eprintln!(
        "scored {} users ({}) in {:.2} s: {:.0} users/s on {} threads; {}",
        users.len(),
        if lsh { "LSH" } else { "exact" },
        secs,
        users.len() as f64 / secs.max(1e-9),
        rayon::current_num_threads(),
        wrote(&a.out, ext, Rows::Users)
    );
    Ok(())
}
