//! Model files: round trips, and every corruption refused with a typed error (never a panic).

use std::path::Path;

use lshrec::data::synth;
use lshrec::store::{self, Model, ModelMeta, ModelParts};
use lshrec::train::{self, ModelKind, TrainConfig};
use lshrec::Error;
use proptest::prelude::*;

fn tiny_model(dir: &Path) {
    let (ds, _) = synth::generate(&synth::SynthConfig {
        users: 60,
        items: 90,
        ratings: 1500,
        ..Default::default()
    })
    .unwrap();
    let ds = ds.implicit(4.0);
    let mut cfg = TrainConfig::defaults(ModelKind::Ials);
    cfg.dim = 8;
    cfg.epochs = 2;
    cfg.valid_frac = 0.0;
    let t = train::fit(&cfg, &ds, &mut |_, _| {}).unwrap();
    let csr = ds.csr();
    let meta = ModelMeta {
        kind: "ials".into(),
        dim: t.dim,
        n_users: ds.n_users(),
        n_items: ds.n_items(),
        user_ids: ds.users.ext_ids().to_vec(),
        item_ids: ds.items.ext_ids().to_vec(),
        folded_item_bias: false,
        global_mean: None,
        config: "{}".into(),
        seed: 42,
        metrics: vec![("ndcg@10".into(), 0.5)],
        catalogue: store::model::catalogue(&ds),
        item_features: vec!["genre:A".into(), "genre:B".into()],
        user_features: vec![],
        files: vec![],
        written_by: String::new(),
    };
    store::save(
        dir,
        ModelParts {
            meta,
            users: &t.users,
            items: &t.items,
            user_bias: Some(&vec![0.5; ds.n_users()]),
            seen: Some(&csr),
            item_feature_map: Some(&vec![0.25; 2 * t.dim]),
            user_feature_map: None,
            first_ratings: Some(&first_ratings_map(ds.n_items(), t.dim)),
        },
    )
    .unwrap();
}

/// A first-ratings map whose row r holds r + 0.5 (items, no user features, the constant).
fn first_ratings_map(n_items: usize, d: usize) -> Vec<f32> {
    (0..(n_items + 1) * d)
        .map(|k| (k / d) as f32 + 0.5)
        .collect()
}

#[test]
fn round_trip() {
    let t = tempfile::tempdir().unwrap();
    tiny_model(t.path());
    let m = Model::open(t.path()).unwrap();
    assert!(
        m.users.is_mapped() && m.items.is_mapped(),
        "served zero-copy"
    );
    assert_eq!((m.n_users(), m.n_items(), m.dim()), (60, 90, 8));
    assert_eq!(m.user("1").unwrap(), 0);
    assert!(matches!(m.user("nobody"), Err(Error::UnknownUser { .. })));
    assert_eq!(m.seen.as_ref().unwrap().rows, 60);
    assert_eq!(m.user_bias.as_ref().unwrap().row(3), &[0.5]);
    assert!(m.title(0).starts_with("Synthetic Movie 1 ("));
    assert_eq!(m.item_features.as_ref().unwrap().row(1), &[0.25; 8]);
    assert!(m.user_features.is_none());
    assert_eq!(
        m.first_ratings.as_ref().unwrap().as_slice(),
        &first_ratings_map(90, 8)[..]
    );
    // A new user's vector: the constant row (90.5) plus each liked item's row.
    let v = m
        .first_ratings_vector(&[2, 5], None, None, None, &[])
        .unwrap();
    assert_eq!(v, vec![90.5 + 2.5 + 5.5; 8]);
    assert!(
        m.first_ratings_vector(&[90], None, None, None, &[])
            .is_err(),
        "item row out of range"
    );
    // No temporary files are left behind.
    for e in std::fs::read_dir(t.path()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp-"), "{n}");
    }
}

fn corrupt(name: &str, f: impl Fn(&mut Vec<u8>)) -> Error {
    let t = tempfile::tempdir().unwrap();
    tiny_model(t.path());
    let p = t.path().join(name);
    let mut b = std::fs::read(&p).unwrap();
    f(&mut b);
    std::fs::write(&p, &b).unwrap();
    Model::open(t.path()).expect_err("corruption must be refused")
}

#[test]
fn corrupted_files_are_refused() {
    let last = |b: &mut Vec<u8>| {
        let n = b.len();
        b[n - 1] ^= 0x40;
    };
    for (file, what) in [
        ("items.npy", "flipped data byte"),
        ("users.npy", "flipped data byte"),
        ("seen.bin", "flipped data byte"),
        ("user_bias.npy", "flipped data byte"),
        ("item_features.npy", "flipped data byte"),
        ("first_ratings.npy", "flipped data byte"),
        ("model.bin", "flipped metadata byte"),
    ] {
        let e = corrupt(file, last);
        assert!(matches!(e, Error::Corrupt { .. }), "{file} {what}: {e}");
    }
    for file in [
        "items.npy",
        "users.npy",
        "seen.bin",
        "model.bin",
        "item_features.npy",
        "first_ratings.npy",
    ] {
        let e = corrupt(file, |b| b.truncate(b.len() - 5));
        assert!(matches!(e, Error::Corrupt { .. }), "{file} truncated: {e}");
        let e = corrupt(file, |b| b.truncate(3));
        assert!(
            matches!(e, Error::Corrupt { .. }),
            "{file} cut to 3 bytes: {e}"
        );
    }
    let e = corrupt("model.bin", |b| b[0] = b'X');
    assert!(e.to_string().contains("magic"), "{e}");
    let e = corrupt("model.bin", |b| b[8] = 99);
    assert!(e.to_string().contains("version 99"), "{e}");
    let e = corrupt("items.npy", |b| b[0] = 0);
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");

    // A missing array file.
    let t = tempfile::tempdir().unwrap();
    tiny_model(t.path());
    std::fs::remove_file(t.path().join("items.npy")).unwrap();
    assert!(matches!(Model::open(t.path()), Err(Error::Io { .. })));
    // A directory that is no model.
    assert!(matches!(
        Model::open(Path::new("/")),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn items_swapped_between_models_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    tiny_model(a.path());
    tiny_model(b.path());
    // Same shape, different content: the checksum recorded in model.bin catches it.
    let npy = lshrec::store::npy::write_f32;
    npy(&b.path().join("items.npy"), &[90, 8], &vec![0.25; 720]).unwrap();
    std::fs::copy(b.path().join("items.npy"), a.path().join("items.npy")).unwrap();
    assert!(matches!(Model::open(a.path()), Err(Error::Corrupt { .. })));
}

/// A version-2 `model.bin` (catalogue entries without attribute tags) is still read: the
/// same model, with empty tags; a version this lshrec never wrote is refused by number.
#[test]
fn version_2_models_are_read() {
    use lshrec::store::model::{CatalogueEntryV2, ModelMetaOf, MODEL_MAGIC};
    let t = tempfile::tempdir().unwrap();
    tiny_model(t.path());
    let now = Model::open(t.path()).unwrap().meta.clone();
    assert_eq!(now.catalogue.len(), 90);
    let v2: ModelMetaOf<CatalogueEntryV2> = now.clone().map_catalogue(|c| CatalogueEntryV2 {
        title: c.title,
        genres: c.genres,
        year: c.year,
    });
    let bytes = store::frame::encode(MODEL_MAGIC, 2, &v2).unwrap();
    std::fs::write(t.path().join("model.bin"), &bytes).unwrap();
    let old = Model::open(t.path()).unwrap();
    assert_eq!(old.meta, now, "the version-2 file reads as the same model");
    assert!(old.meta.catalogue.iter().all(|c| c.tags.is_empty()));
    // Tags round-trip in version 3; version-3 bytes labelled version 2 are refused.
    let mut tagged = now.clone();
    tagged.catalogue[7].tags = vec![("brand".into(), "acme".into())];
    let v3 = store::frame::encode(MODEL_MAGIC, 3, &tagged).unwrap();
    std::fs::write(t.path().join("model.bin"), &v3).unwrap();
    assert_eq!(Model::open(t.path()).unwrap().meta, tagged);
    let mut relabelled = v3;
    relabelled[8] = 2;
    std::fs::write(t.path().join("model.bin"), &relabelled).unwrap();
    assert!(matches!(Model::open(t.path()), Err(Error::Corrupt { .. })));
    let mut future = bytes;
    future[8] = 4;
    std::fs::write(t.path().join("model.bin"), &future).unwrap();
    let e = Model::open(t.path()).expect_err("version 4 is refused");
    assert!(e.to_string().contains("version 4"), "{e}");
    assert!(e.to_string().contains("2 or 3"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
    /// Random damage to model.bin or seen.bin never panics; it is refused unless the bytes are
    /// unchanged.
    #[test]
    fn fuzz_metadata_and_seen(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), which in 0usize..2, truncate in any::<bool>()) {
        let b0 = SAMPLE.with(|s| s.clone());
        let name = ["model.bin", "seen.bin"][which];
        let mut bytes = b0[which].clone();
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        } else {
            let i = pos.index(bytes.len());
            bytes[i] = byte;
        }
        let res = if which == 0 {
            lshrec::store::read::parse_meta(Path::new(name), &bytes).map(|_| ())
        } else {
            lshrec::store::read::parse_seen(Path::new(name), &bytes).map(|_| ())
        };
        if bytes != b0[which] {
            // seen.bin has no checksum of its own (model.bin records it); a flipped value byte
            // may still parse, but a structural change must not.
            if which == 0 || truncate {
                prop_assert!(res.is_err());
            }
        } else {
            prop_assert!(res.is_ok());
        }
    }
}

thread_local! {
    static SAMPLE: Vec<Vec<u8>> = {
        let t = tempfile::tempdir().unwrap();
        tiny_model(t.path());
        vec![
            std::fs::read(t.path().join("model.bin")).unwrap(),
            std::fs::read(t.path().join("seen.bin")).unwrap(),
        ]
    };
}
