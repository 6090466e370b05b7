//! Helpers shared by the integration tests.

use std::process::Command;

/// Runs the `lshrec` binary; returns (exit code, stdout, stderr).
pub fn lshrec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lshrec"))
        .args(args)
        .output()
        .expect("run lshrec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `lshrec`, asserts it is refused (exit code 2) with a message containing `want`.
#[allow(dead_code)]
pub fn refused(args: &[&str], want: &str) {
    let (code, _, err) = lshrec(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

/// Runs `lshrec`, asserts exit code 0 and returns its stdout.
#[allow(dead_code)] // not every test binary uses every helper
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = lshrec(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// `lshrec data synth` into `out`: `users` × `items` with `ratings` ratings, plus `extra`
/// arguments (`--to FORMAT`, `--seed S`).
#[allow(dead_code)]
pub fn synth(out: &str, users: u32, items: u32, ratings: u32, extra: &[&str]) {
    let (u, i, r) = (users.to_string(), items.to_string(), ratings.to_string());
    let mut args = vec![
        "data",
        "synth",
        "--users",
        &u,
        "--items",
        &i,
        "--ratings",
        &r,
        "--out",
        out,
    ];
    args.extend(extra);
    ok(&args);
}

/// `n` draws of a normal of standard deviation `std`.
#[allow(dead_code)]
pub fn normals(r: &mut lshrec::rng::Rng, n: usize, std: f32) -> Vec<f32> {
    (0..n).map(|_| std * r.normal() as f32).collect()
}

/// Asserts `a` and `b` agree to `tol`, relative to max(1, |a|, |b|), element by element.
#[allow(dead_code)]
pub fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = 1.0f32.max(x.abs()).max(y.abs());
        assert!((x - y).abs() <= tol * scale, "{what}[{k}]: {x} vs {y}");
    }
}

/// The synthetic rating set the training tests plant structure in: flatter popularity than
/// MovieLens, so that taste, not popularity, carries the signal.
#[allow(dead_code)]
pub fn planted_ratings() -> lshrec::data::Dataset {
    let cfg = lshrec::data::synth::SynthConfig {
        users: 400,
        items: 300,
        ratings: 16_000,
        seed: 9,
        zipf: 0.5,
        ..Default::default()
    };
    println!("synthetic seed {}", cfg.seed);
    lshrec::data::synth::generate(&cfg).unwrap().0
}

/// NDCG@10 of a trained model on `te`, training positives `tr` excluded.
#[allow(dead_code)]
pub fn ndcg(
    t: &lshrec::train::Trained,
    tr: &lshrec::data::Dataset,
    te: &lshrec::data::Dataset,
) -> f64 {
    lshrec::eval::ranking(&t.users, &t.items, t.dim, &tr.csr(), &te.csr(), &[10])
        .unwrap()
        .at[0]
        .ndcg
}
