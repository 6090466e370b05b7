use lshrec::data::synth::{mips, MipsConfig};
use lshrec::index::{self, BuildConfig, Index, Mode, Scratch, SearchParams};
fn main() {
    let c = MipsConfig {
        items: 1_000_000,
        users: 500,
        dim: 64,
        ..Default::default()
    };
    let (u, it) = mips(&c);
    let idx = Index::from_built(
        index::build(
            &it,
            64,
            &BuildConfig {
                ranges: 61,
                ..Default::default()
            },
            0,
        )
        .unwrap(),
    )
    .unwrap();
    let mut s = Scratch::new(1_000_000);
    let p = SearchParams {
        k: 10,
        probes: 0,
        max_candidates: std::env::args().nth(1).unwrap().parse().unwrap(),
        mode: Mode::Scan,
    };
    let (mut rv, mut cand) = (0, 0);
    let t = std::time::Instant::now();
    for q in 0..500 {
        idx.search(&it, &u[q * 64..(q + 1) * 64], &[], &p, &mut s);
        rv += s.ranges_visited;
        cand += s.candidates;
    }
    println!(
        "{:.1} µs/query, ranges {:.1}, cands {:.0}",
        t.elapsed().as_secs_f64() * 1e6 / 500.0,
        rv as f64 / 500.0,
        cand as f64 / 500.0
    );
}
