//! The binary's contract: exit code 0 on success, 2 on bad usage or input with one clear line.

mod common;
use common::{lshrec, ok, refused, synth};

#[test]
fn bad_input_and_usage_exit_2_with_a_clear_line() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("u.data");
    std::fs::write(&p, "1\t2\tx\t3\n").unwrap();
    let (code, _, err) = lshrec(&["data", "stats", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("u.data:1") && err.contains("rating"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, _, err) = lshrec(&["data", "stats", "/nonexistent/dir"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = lshrec(&["data", "stats"]);
    assert_eq!(code, 2, "missing argument is a usage error");
    // The output never overwrites the input it was read from, and an output path that is a
    // file where a directory is written is bad usage too (exit 2, not 1).
    let rows = t.path().join("r");
    std::fs::create_dir(&rows).unwrap();
    let train = rows.join("train.tsv");
    let lines: String = (0..40)
        .map(|u| format!("u{},i{}\n", u % 8, u % 5))
        .collect();
    std::fs::write(&train, format!("user,item\n{lines}")).unwrap();
    let before = std::fs::read(&train).unwrap();
    let split = [
        "data",
        "split",
        train.to_str().unwrap(),
        "--method",
        "random:0.2",
    ];
    refused(
        &[&split[..], &["--out", rows.to_str().unwrap()]].concat(),
        "would overwrite an input of this command",
    );
    assert_eq!(
        std::fs::read(&train).unwrap(),
        before,
        "the input is intact"
    );
    let synth_args = [
        "data",
        "synth",
        "--users",
        "10",
        "--items",
        "10",
        "--ratings",
        "20",
    ];
    refused(
        &[&synth_args[..], &["--out", train.to_str().unwrap()]].concat(),
        "train.tsv",
    );
    // A split that holds nothing out is refused, not written with an empty test part.
    refused(
        &[
            &split[..3],
            &["--method", "leave-last:1000"],
            &["--out", t.path().join("ll").to_str().unwrap()],
        ]
        .concat(),
        "leave-last:1000 holds out nothing from this data",
    );
    // A hundred thousand threads would take minutes to spawn: refused before any work.
    refused(
        &["--threads", "100000", "data", "stats", p.to_str().unwrap()],
        "must be between 1 and 1024",
    );
    let (code, _, err) = lshrec(&[
        "data",
        "split",
        t.path().to_str().unwrap(),
        "--method",
        "random:2",
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fraction"), "{err}");
    // Cut-offs above the catalogue are refused before training, not after it.
    let small = t.path().join("small.csv");
    let rows: String = (0..60).map(|u| format!("u{u},i{}\n", u % 3)).collect();
    std::fs::write(&small, format!("user,item\n{rows}")).unwrap();
    let out = t.path().join("m");
    let train = [
        "train",
        "--data",
        small.to_str().unwrap(),
        "--split",
        "random:0.2",
    ];
    let train = [&train[..], &["--out", out.to_str().unwrap()]].concat();
    refused(&train, "cut-off 20 is above the 3 items");
    assert!(!out.exists(), "nothing trained or written");
    ok(&[&train[..], &["--k", "1,3"]].concat());
    // Outputs that cannot be written are refused before the work: a file where a directory
    // goes (at the path or above it), a directory where a file goes.
    let model = out.to_str().unwrap();
    for dir in [small.clone(), small.join("m")] {
        let d = dir.to_str().unwrap();
        refused(
            &[&train[..5], &["--out", d]].concat(),
            &format!("{}: is a file; a directory is needed here", small.display()),
        );
        refused(
            &["index", "build", "--model", model, "--out", d],
            "is a file; a directory is needed here",
        );
    }
    let taken = t.path().join("taken.tsv");
    std::fs::create_dir(&taken).unwrap();
    refused(
        &[
            "recommend-all",
            "--model",
            model,
            "--k",
            "1",
            "--out",
            taken.to_str().unwrap(),
        ],
        "taken.tsv: is a directory; expected the name of a file to write",
    );
}

#[test]
fn a_reader_that_closed_stdout_is_not_a_panic() {
    // `lshrec … | head -1`: a write to a pipe whose reader is gone fails (EPIPE; Rust ignores
    // SIGPIPE). The command must exit 0, as for a reader that had enough, without a panic.
    let t = tempfile::tempdir().unwrap();
    let s = t.path().join("s.csv");
    synth(s.to_str().unwrap(), 30, 40, 300, &[]);
    let s = s.to_str().unwrap();
    for args in [
        &["kernels", "list"][..],
        &["data", "stats", s],
        &["data", "stats", s, "--json"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lshrec"))
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn synth_stats_split_convert_pipeline() {
    let t = tempfile::tempdir().unwrap();
    let s = t.path().join("s");
    let (code, _, err) = lshrec(&[
        "data",
        "synth",
        "--users",
        "50",
        "--items",
        "80",
        "--ratings",
        "1000",
        "--to",
        "atomic",
        "--out",
        s.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = lshrec(&["data", "stats", s.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["users"], 50);
    assert_eq!(v["items"], 80);
    let sp = t.path().join("split");
    let (code, _, err) = lshrec(&[
        "data",
        "split",
        s.to_str().unwrap(),
        "--method",
        "per-user:0.2",
        "--min-rating",
        "4",
        "--out",
        sp.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = lshrec(&["data", "stats", sp.join("test.tsv").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("implicit"), "{out}");
    let (code, _, err) = lshrec(&["--help"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn train_then_eval_for_rating_and_ranking_models() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n).to_str().unwrap().to_string();
    synth(&p("d"), 80, 100, 3000, &["--to", "ml-100k"]);
    let split = |seed: &str, out: &str| {
        let method = ["--method", "random:0.2", "--seed", seed];
        ok(&[
            &["data", "split", &p("d")],
            &method[..],
            &["--out", &p(out)],
        ]
        .concat());
    };
    split("42", "s");
    let (tr, te) = (p("s/train.tsv"), p("s/test.tsv"));
    let out = ok(&[
        "train",
        "--train",
        &tr,
        "--test",
        &te,
        "--model",
        "mf",
        "--dim",
        "8",
        "--epochs",
        "5",
        "--out",
        &p("mf"),
        "-q",
    ]);
    assert!(out.contains("RMSE"), "{out}");
    let out = ok(&[
        "eval",
        "--model",
        &p("mf"),
        "--train",
        &tr,
        "--test",
        &te,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n_test = std::fs::read_to_string(&te).unwrap().lines().count() - 1;
    assert!(v["rmse"].as_f64().unwrap() > 0.0 && v["n"] == n_test, "{v}");
    // Rating prediction needs ratings: implicit pairs are refused for training and as the test
    // part (an RMSE against ratings of 1 would read 0), and it has no cold-start protocol.
    let pairs: String = std::fs::read_to_string(&te)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join("\t") + "\n")
        .collect();
    std::fs::write(p("pairs.tsv"), pairs).unwrap();
    let (pairs, mf2, mf1) = (p("pairs.tsv"), p("mf2"), p("mf"));
    let train_mf = ["train", "--model", "mf", "--out", &mf2];
    refused(
        &[&train_mf[..], &["--data", &pairs]].concat(),
        "no rating column",
    );
    let explicit = ["--train", &tr, "--test", &pairs];
    refused(&[&train_mf[..], &explicit].concat(), "no rating column");
    let eval_mf = ["eval", "--model", &mf1, "--train", &tr, "--test"];
    refused(&[&eval_mf[..], &[&pairs]].concat(), "no rating column");
    let cold = [&te[..], "--cold-users", &pairs];
    refused(&[&eval_mf[..], &cold].concat(), "rating-prediction model");
    ok(&[
        "train",
        "--train",
        &tr,
        "--test",
        &te,
        "--model",
        "ials",
        "--dim",
        "8",
        "--epochs",
        "3",
        "--min-rating",
        "4",
        "--out",
        &p("ials"),
        "-q",
    ]);
    let out = ok(&[
        "eval",
        "--model",
        &p("ials"),
        "--train",
        &tr,
        "--test",
        &te,
        "--min-rating",
        "4",
        "--per-user",
        &p("per-user.tsv"),
    ]);
    assert!(out.contains("NDCG"), "{out}");
    let per_user = std::fs::read_to_string(p("per-user.tsv")).unwrap();
    assert!(
        per_user.starts_with("user\tp@10\tr@10\tndcg@10"),
        "{per_user}"
    );
    assert!(per_user.lines().count() > 10);
    // A test part that is the training part can never be hit (training positives are
    // excluded from the ranking): refused, not a table of zeros; a partial overlap is counted.
    let eval_ials = ["eval", "--model", &p("ials"), "--min-rating", "4"];
    refused(
        &[&eval_ials[..], &["--train", &tr, "--test", &tr]].concat(),
        "is also a training positive of the same user",
    );
    let train_text = std::fs::read_to_string(&tr).unwrap();
    let test_text = std::fs::read_to_string(&te).unwrap();
    let positive = |l: &&str| {
        l.split('\t')
            .nth(2)
            .is_some_and(|r| r.parse::<f32>().unwrap() >= 4.0)
    };
    let leaked: Vec<&str> = train_text
        .lines()
        .skip(1)
        .filter(positive)
        .take(3)
        .collect();
    std::fs::write(
        p("leaky.tsv"),
        format!("{test_text}{}\n", leaked.join("\n")),
    )
    .unwrap();
    let (code, _, err) =
        lshrec(&[&eval_ials[..], &["--train", &tr, "--test", &p("leaky.tsv")]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("note: 3 of the "), "{err}");
    // The model's own training data is checked too (its seen.bin), whatever --train says:
    // those three were fitted, so the metrics are optimistic; --quiet does not hide it.
    assert!(
        err.contains("warning: 3 of the ") && err.contains("training interactions of this model"),
        "{err}"
    );
    let (code, out, err) =
        lshrec(&[&eval_ials[..], &["--train", &tr, "--test", &te, "--json"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["test_interactions_in_model_training"], 0, "{v}");
    // Another split of the same data: a consistent train/test pair, but its test part holds
    // many of the pairs the model was trained on; the count is exact.
    split("7", "s7");
    let pairs = |path: &str| -> std::collections::HashSet<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .filter(positive)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), f[1].to_string())
            })
            .collect()
    };
    let want = pairs(&p("s7/test.tsv")).intersection(&pairs(&tr)).count();
    assert!(want > 0);
    let s7 = ["--train", &p("s7/train.tsv"), "--test", &p("s7/test.tsv")];
    let (code, out, err) = lshrec(&[&eval_ials[..], &s7, &["--json", "-q"]].concat());
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["test_interactions_in_model_training"], want, "{v}");
    assert!(err.contains(&format!("warning: {want} of the ")), "{err}");
}

/// Positive weights: iALS on every rating weighs each positive by its rating by default (and
/// records the mean weight for the fold-in); binary weights on request or with --min-rating;
/// `--weights rating` on data without ratings is refused.
#[test]
fn every_rating_ials_weighs_positives_by_rating() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    synth(&p("s"), 100, 80, 3000, &[]);
    let (data, model) = (p("s"), p("m"));
    let config = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["train", "--data", &data, "--model", "ials", "--out", &model];
        args.extend(extra);
        ok(&args);
        let m = lshrec::store::Model::open(std::path::Path::new(&model)).unwrap();
        serde_json::from_str(&m.meta.config).unwrap()
    };
    let c = config(&[]);
    let (alpha, w) = (
        c["alpha"].as_f64().unwrap(),
        c["positive_weight"].as_f64().unwrap(),
    );
    assert!((alpha - 0.35).abs() < 1e-6, "{c}");
    assert!(w > 1.5 && w < 5.0, "mean rating weight on a 1-5 scale: {w}");
    let c = config(&["--weights", "binary"]);
    assert_eq!(
        (c["alpha"].as_f64(), c["positive_weight"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    let c = config(&["--min-rating", "4"]);
    assert_eq!(c["positive_weight"].as_f64(), Some(1.0), "{c}");

    std::fs::write(p("pairs.tsv"), "u1\ti1\nu2\ti1\nu2\ti2\n").unwrap();
    refused(
        &[
            "train",
            "--data",
            &p("pairs.tsv"),
            "--model",
            "ials",
            "--weights",
            "rating",
            "--out",
            &p("m2"),
        ],
        "--weights rating",
    );
}

/// A learning rate far too high makes training diverge: a usage error (exit 2) whose one line
/// names the epoch and the setting to change, and no model directory is written.
#[test]
fn divergence_is_a_usage_error_naming_the_setting_to_change() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    synth(&p("s"), 60, 50, 1500, &[]);
    let (code, _, err) = lshrec(&[
        "train",
        "--data",
        &p("s"),
        "--model",
        "mf",
        "--lr",
        "1e6",
        "--dim",
        "8",
        "--epochs",
        "5",
        "--out",
        &p("m"),
        "-q",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("training diverged at epoch") && err.contains("lower learning rate"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!t.path().join("m").exists(), "a diverged run wrote a model");
    // iALS has no learning rate: its hint names the regularisation.
    let (code, _, err) = lshrec(&[
        "train",
        "--data",
        &p("s"),
        "--model",
        "ials",
        "--reg-exponent",
        "100",
        "--epochs",
        "2",
        "--out",
        &p("m"),
        "-q",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("training diverged") && err.contains("--reg-exponent"),
        "{err}"
    );
    assert!(!err.contains("learning rate"), "{err}");
}

/// Rank-aware negatives: `--hard-negatives N` is recorded in the model's configuration for bpr
/// and lightgcn's pairwise losses; other models, LightGCN's default pointwise loss, 0 and
/// absurd counts are refused as usage errors.
#[test]
fn hard_negatives_are_a_bpr_and_lightgcn_option() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    synth(&p("s"), 60, 50, 1500, &[]);
    let data = p("s");
    for (model, dir) in [("bpr", p("bpr")), ("lightgcn", p("lg"))] {
        // LightGCN samples negatives for its pairwise losses only.
        let loss: &[&str] = match model {
            "lightgcn" => &["--loss", "bpr"],
            _ => &[],
        };
        let args = [
            &[
                "train",
                "--data",
                &data,
                "--model",
                model,
                "--min-rating",
                "4",
                "--dim",
                "8",
                "--epochs",
                "3",
                "--hard-negatives",
                "5",
                "--out",
                &dir,
                "-q",
            ][..],
            loss,
        ]
        .concat();
        ok(&args);
        let m = lshrec::store::Model::open(std::path::Path::new(&dir)).unwrap();
        let c: serde_json::Value = serde_json::from_str(&m.meta.config).unwrap();
        assert_eq!(c["hard_negatives"], 5, "{model}: {c}");
    }
    // Bad counts, and any knob the model never reads, are refused, not ignored.
    for (model, flag, value, want) in [
        (
            "ials",
            "--hard-negatives",
            "4",
            "bpr and --model lightgcn only",
        ),
        ("bpr", "--hard-negatives", "0", "between 1 and 1024"),
        ("lightgcn", "--hard-negatives", "5000", "between 1 and 1024"),
        (
            "lightgcn",
            "--hard-negatives",
            "4",
            "pairwise losses (--loss bpr or margin)",
        ),
        ("ials", "--lr", "0.1", "applies to"),
        ("ials", "--layers", "3", "applies to"),
        ("bpr", "--layers", "2", "applies to"),
        ("bpr", "--batch", "100", "applies to"),
        ("mf", "--cg-steps", "2", "applies to"),
        ("lightgcn", "--reg-exponent", "0.5", "applies to"),
    ] {
        let (code, _, err) = lshrec(&[
            "train",
            "--data",
            &data,
            "--model",
            model,
            flag,
            value,
            "--out",
            &p("x"),
        ]);
        assert_eq!(code, 2, "{model} {flag} {value}: {err}");
        assert!(
            err.contains(&format!("invalid {flag}")) && err.contains(want),
            "{err}"
        );
    }
    // A batch of 0 triples ran as batches of 1: one propagation per triple, for hours.
    let pairwise = ["--model", "lightgcn", "--loss", "bpr", "--batch", "0"];
    refused(
        &[&["train", "--data", &data, "--out", &p("x")][..], &pairwise].concat(),
        "invalid --batch: must be at least 1",
    );
}

/// iALS's known negatives: `data split --min-rating` keeps the training part's low ratings in
/// `train_rated.tsv`, and training on it gives the model `train --data … --split` gives (the
/// rating-less `test.tsv` keeps all its pairs under --min-rating); `--low-ratings ignore`
/// gives another model; `--negative-confidence` without known negatives is a usage error.
#[test]
fn known_negatives_travel_with_the_split() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    synth(&p("d"), 60, 80, 2000, &[]);
    let common = [
        "--model",
        "ials",
        "--dim",
        "8",
        "--epochs",
        "4",
        "--min-rating",
        "4",
    ];
    let ndcg = |args: &[&str]| -> (f64, u64) {
        let mut a = vec!["train", "--json", "-q"];
        a.extend(common);
        a.extend(args);
        let v: serde_json::Value = serde_json::from_str(&ok(&a)).unwrap();
        (
            v["ranking"]["at"][0]["ndcg"].as_f64().unwrap(),
            v["ranking"]["users"].as_u64().unwrap(),
        )
    };
    let split = [
        "--method",
        "per-user:0.2",
        "--min-rating",
        "4",
        "--seed",
        "3",
    ];
    let (data, out) = (p("d"), p("s"));
    let mut a = vec!["data", "split", &data];
    a.extend(split);
    a.extend(["--out", &out]);
    ok(&a);
    let rated = std::fs::read_to_string(p("s/train_rated.tsv")).unwrap();
    let positives = std::fs::read_to_string(p("s/train.tsv")).unwrap();
    assert!(rated.lines().count() > positives.lines().count());
    let (direct, users) = ndcg(&[
        "--data",
        &p("d"),
        "--split",
        "per-user:0.2",
        "--seed",
        "3",
        "--out",
        &p("m1"),
    ]);
    assert!(users > 0 && direct > 0.0);
    let (tr, te) = (p("s/train_rated.tsv"), p("s/test.tsv"));
    let via = |extra: &[&str], dir: &str| {
        let mut a = vec!["--train", &tr, "--test", &te, "--seed", "3", "--out", dir];
        a.extend(extra);
        ndcg(&a)
    };
    assert_eq!(via(&[], &p("m2")), (direct, users));
    // `eval` without --min-rating applies the model's own threshold (every rating a positive
    // would exclude the low ones from the ranking and score higher).
    let eval = |extra: &[&str]| -> f64 {
        let m2 = p("m2");
        let mut a = vec![
            "eval", "--model", &m2, "--train", &tr, "--test", &te, "--json",
        ];
        a.extend(extra);
        let v: serde_json::Value = serde_json::from_str(&ok(&a)).unwrap();
        v["at"][0]["ndcg"].as_f64().unwrap()
    };
    assert_eq!(eval(&[]), direct);
    assert_eq!(eval(&["--min-rating", "4"]), direct);
    assert_ne!(eval(&["--min-rating", "1"]), direct);
    let ignored = via(&["--low-ratings", "ignore"], &p("m3"));
    assert_ne!(ignored.0, direct);
    refused(
        &[
            "train",
            "--data",
            &p("d"),
            "--model",
            "bpr",
            "--negative-confidence",
            "3",
            "--out",
            &p("x"),
        ],
        "--negative-confidence",
    );
}

#[test]
fn a_spreadsheet_export_loads_and_dropped_duplicates_are_said() {
    // A CSV saved by a spreadsheet: a UTF-8 byte-order mark, CRLF endings, a repeated pair.
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("r.csv");
    std::fs::write(
        &p,
        b"\xEF\xBB\xBFuser,item,rating\r\n1,10,5\r\n1,11,4\r\n2,10,3\r\n1,10,2\r\n",
    )
    .unwrap();
    let (code, out, err) = lshrec(&["data", "stats", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("duplicates      1 dropped"), "{out}");
    let m = t.path().join("m");
    let (code, out, err) = lshrec(&[
        "train",
        "--data",
        p.to_str().unwrap(),
        "--model",
        "mf",
        "--epochs",
        "1",
        "--seed",
        "1",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 interactions"), "{out}");
    assert!(
        err.contains("r.csv: 1 duplicate user-item row dropped"),
        "{err}"
    );
}

/// A --min-rating no rating reaches would leave nothing to train on or evaluate (a table of
/// zeros): refused, with the ratings' range, by stats, split, train and eval; and mf, which
/// predicts every rating, refuses it instead of ignoring it.
#[test]
fn a_min_rating_above_every_rating_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    synth(&p("d"), 60, 80, 2000, &[]);
    let data = p("d");
    let want = "no rating of";
    refused(&["data", "stats", &data, "--min-rating", "6"], want);
    let split = ["data", "split", &data, "--method", "per-user:0.2"];
    refused(
        &[&split[..], &["--min-rating", "6", "--out", &p("x")]].concat(),
        want,
    );
    let ials = ["train", "--data", &data, "--model", "ials", "--epochs", "2"];
    let m = p("m");
    let ials = [&ials[..], &["--split", "per-user:0.2", "--out", &m]].concat();
    refused(
        &[&ials[..], &["--min-rating", "5.5"]].concat(),
        "they run from 1 to 5",
    );
    ok(&[&ials[..], &["--min-rating", "5", "-q"]].concat());
    // Every rating a positive: the split's files keep their ratings.
    ok(&[&split[..], &["--out", &p("s")]].concat());
    let (m, tr, te) = (p("m"), p("s/train.tsv"), p("s/test.tsv"));
    let eval = ["eval", "--model", &m, "--train", &tr, "--test", &te];
    ok(&[&eval[..], &["--min-rating", "4", "-q"]].concat());
    refused(&[&eval[..], &["--min-rating", "6"]].concat(), want);
    let mf = ["train", "--data", &data, "--model", "mf", "--epochs", "2"];
    refused(
        &[&mf[..], &["--min-rating", "4", "--out", &p("mf")]].concat(),
        "mf predicts every rating",
    );
}

/// The main job, end to end on a small MovieLens-shaped set (the scale benchmark skipped): every
/// step runs and leaves what it says, the top-10 file has ten rows per user, and the new user
/// known by their first ratings gets ten recommendations, none of them a liked movie.
#[test]
fn demo_runs_end_to_end() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n).to_str().unwrap().to_string();
    synth(&p("d"), 120, 300, 6000, &["--to", "ml-100k"]);
    let out = ok(&[
        "-q",
        "demo",
        "--data",
        &p("d"),
        "--out",
        &p("o"),
        "--scale-items",
        "0",
    ]);
    for step in [
        "== train",
        "== build the LSH index",
        "== benchmark",
        "== top-10",
        "== a new user",
    ] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
    let top = std::fs::read_to_string(p("o/top10.tsv")).unwrap();
    assert_eq!(top.lines().count(), 1 + 120 * 10, "{top}");
    let new_user = &out[out.find("== a new user").unwrap()..];
    let ranked: Vec<&str> = new_user
        .lines()
        .filter(|l| {
            l.trim_start()
                .split('.')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect();
    assert_eq!(ranked.len(), 10, "{new_user}");
    let liked: Vec<&str> = new_user[new_user.find("liked:").unwrap()..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(liked.len(), 3, "{new_user}");
    for l in liked {
        let title = l.trim().split("  [").next().unwrap();
        assert!(
            !ranked.iter().any(|r| r.contains(title)),
            "{title} is liked and recommended"
        );
    }
    // The model it leaves serves queries.
    ok(&[
        "query",
        "--model",
        &p("o/model"),
        "--index",
        &p("o/model/index"),
        "--user",
        "1",
    ]);
}
