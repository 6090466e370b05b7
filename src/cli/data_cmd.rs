//! `lshrec data …`

use std::path::Path;

use super::{check_min_rating, DataCommand};
use crate::data::{self, split::SplitMethod, stats, synth};
use crate::error::{Error, Result};

/// Loads the input, reduced to positives ≥ `min_rating` when given.
fn load(input: &super::InputArgs, min_rating: Option<f32>) -> Result<data::Dataset> {
    let min_rating = check_min_rating(min_rating)?;
    let ds = data::load(&input.path, &input.load_options()?)?;
    super::check_min_rating_reached(&ds, min_rating, &input.path)?;
    Ok(match min_rating {
        Some(r) => ds.implicit(r),
        None => ds,
    })
}

/// Attribute files are read, not rewritten: says so when `split` or `convert` had some.
fn attributes_note(input: &super::InputArgs) {
    let r = &input.read;
    if r.item_features.is_some() || r.user_features.is_some() {
        eprintln!("note: attribute files are not copied into the output; pass the same --item-features / --user-features to train and eval on it");
    }
}

/// Runs a `data` subcommand.
pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Stats {
            input,
            min_rating,
            json,
        } => {
            let ds = load(&input, min_rating)?;
            super::note_reading(&ds);
            let s = stats::compute(&ds);
            super::report(json, &s, || s.to_string())
        }
        DataCommand::Split {
            input,
            method,
            seed,
            min_rating,
            out,
        } => {
            let spec = method;
            let method: SplitMethod = spec.parse()?;
            method.check_seed(seed)?;
            crate::store::atomic::dir_target(&out)?;
            let min_rating = check_min_rating(min_rating)?;
            let raw = load(&input, None)?;
            super::check_min_rating_reached(&raw, min_rating, &input.path)?;
            super::note_dataset(&raw);
            // Protocol P3 holds out a fraction of the movies, every rated one a candidate, so
            // the cold set is drawn before --min-rating keeps the positives.
            let cold = match method {
                SplitMethod::ColdItems { frac } => Some(data::split::cold_items(&raw, frac, seed)),
                _ => None,
            };
            let ds = match min_rating {
                Some(r) => raw.implicit(r),
                None => raw.clone(),
            };
            // Cold users are drawn among those with enough positives, so after --min-rating.
            let cold_users = match method {
                SplitMethod::ColdUsers { frac, min } => {
                    data::split::cold_users(&ds, frac, min, seed)
                }
                _ => Vec::new(),
            };
            let (tr, te) = match &cold {
                Some(c) => data::split::split_items(&ds, c),
                None if !cold_users.is_empty() => data::split::split_users(&ds, &cold_users),
                None => data::split::split(&ds, method, seed),
            };
            if let (SplitMethod::ColdUsers { frac, min }, true) = (method, cold_users.is_empty()) {
                return Err(Error::invalid(
                    "--method",
                    format!("cold-users:{frac}:{min} holds out no user: too few users have {min} positives or more for a fraction of {frac}; lower MIN or raise F"),
                ));
            }
            super::check_holds_out(&te, "--method", &spec)?;
            data::formats::generic::write_ratings(&tr, &out.join("train.tsv"))?;
            data::formats::generic::write_ratings(&te, &out.join("test.tsv"))?;
            // With --min-rating, the training part keeps its ratings below it too (iALS's known
            // negatives), so `train --train train_rated.tsv --min-rating R` sees what `train
            // --data … --split` does.
            let mut rated_note = String::new();
            if min_rating.is_some() && raw.has_ratings {
                let held: std::collections::HashSet<(u32, u32)> =
                    te.interactions.iter().map(|x| (x.user, x.item)).collect();
                let mut is_cold = vec![false; raw.n_items()];
                for &i in cold.iter().flatten() {
                    is_cold[i as usize] = true;
                }
                let mut is_cold_user = vec![false; raw.n_users()];
                for &u in &cold_users {
                    is_cold_user[u as usize] = true;
                }
                let rated = raw.with_interactions(
                    (raw.interactions.iter())
                        .filter(|x| {
                            !held.contains(&(x.user, x.item))
                                && !is_cold[x.item as usize]
                                && !is_cold_user[x.user as usize]
                        })
                        .copied()
                        .collect(),
                );
                let path = out.join("train_rated.tsv");
                data::formats::generic::write_ratings(&rated, &path)?;
                rated_note = format!(
                    "; {} training ratings, those below --min-rating included, in {}",
                    rated.interactions.len(),
                    path.display()
                );
            }
            // The catalogue and demographics travel with the split, so that `--train/--test`
            // runs see every item (also never-rated ones) and their side features.
            data::formats::generic::write_side(&ds, &out)?;
            let mut extra = String::new();
            if let Some(cold) = cold {
                let ids = cold.iter().map(|&i| ds.items.ext(i));
                extra = write_list(&out.join("cold_items.txt"), "cold items", ids)?;
            }
            if !cold_users.is_empty() {
                let ids = cold_users.iter().map(|&u| ds.users.ext(u));
                extra = write_list(&out.join("cold_users.txt"), "cold users", ids)?;
            }
            attributes_note(&input);
            eprintln!(
                "wrote {} train and {} test interactions to {}{extra}{rated_note}",
                tr.interactions.len(),
                te.interactions.len(),
                out.display()
            );
            Ok(())
        }
        DataCommand::Synth {
            users,
            items,
            ratings,
            dim,
            zipf,
            seed,
            to,
            out,
        } => {
            if !(zipf.is_finite() && zipf >= 0.0) {
                return Err(Error::invalid("--zipf", "must be a non-negative number"));
            }
            let cfg = synth::SynthConfig {
                users,
                items,
                ratings,
                dim,
                zipf,
                seed,
            };
            let (ds, _) = synth::generate(&cfg)?;
            data::write(&ds, &out, to)?;
            eprintln!(
                "wrote {} ratings of {} users on {} items to {} ({})",
                ds.interactions.len(),
                users,
                items,
                out.display(),
                to.name()
            );
            Ok(())
        }
        DataCommand::SynthMips {
            items,
            users,
            dim,
            clusters,
            sigma,
            seed,
            out,
        } => {
            let cfg = synth::MipsConfig {
                items,
                users,
                dim,
                clusters,
                norm_sigma: sigma,
                seed,
                ..Default::default()
            };
            cfg.check()?;
            let (u, i) = synth::mips(&cfg);
            crate::store::npy::write_f32(&out.join("users.npy"), &[users, dim], &u)?;
            crate::store::npy::write_f32(&out.join("items.npy"), &[items, dim], &i)?;
            eprintln!(
                "wrote {users} users and {items} items × {dim} dims to {}",
                out.display()
            );
            Ok(())
        }
        DataCommand::Convert { input, to, out } => {
            let opts = input.load_options()?;
            let ds = data::load(&input.path, &opts)?;
            super::note_dataset(&ds);
            data::write(&ds, &out, to)?;
            attributes_note(&input);
            eprintln!(
                "wrote {} interactions to {} ({})",
                ds.interactions.len(),
                out.display(),
                to.name()
            );
            Ok(())
        }
    }
}

/// Writes one id per line to `path` (a split's held-out items or users); returns the summary
/// line's mention of it.
fn write_list<'a>(path: &Path, what: &str, ids: impl Iterator<Item = &'a str>) -> Result<String> {
    let mut n = 0usize;
    crate::store::atomic::write_atomic(path, |w| {
        for id in ids {
            writeln!(w, "{id}")?;
            n += 1;
        }
        Ok(())
    })?;
    Ok(format!(", {n} {what} listed in {}", path.display()))
}
