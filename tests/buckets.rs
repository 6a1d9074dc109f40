//! Shape buckets: power-of-two cuts of the declared ranges, listed values
//! on their own, a bound on their number, and the lookup the runtime uses.

use prism::frontend;
use prism::ir::DimValues;
use prism::tune::buckets::{Bucket, MAX_BUCKETS, bucket_of, buckets, dim_buckets, per_dim};

fn b(lo: i64, hi: i64) -> Bucket {
    Bucket { lo, hi }
}

#[test]
fn ranges_are_cut_at_powers_of_two_and_lists_are_their_own() {
    assert_eq!(
        dim_buckets(&DimValues::Range { lo: 1, hi: 9 }),
        [b(1, 1), b(2, 2), b(3, 4), b(5, 8), b(9, 9)]
    );
    assert_eq!(
        dim_buckets(&DimValues::Range { lo: 5, hi: 64 }),
        [b(5, 8), b(9, 16), b(17, 32), b(33, 64)]
    );
    assert_eq!(dim_buckets(&DimValues::Range { lo: 7, hi: 7 }), [b(7, 7)]);
    assert_eq!(
        dim_buckets(&DimValues::List(vec![1024, 2048, 4096])),
        [b(1024, 1024), b(2048, 2048), b(4096, 4096)]
    );
    // The whole i64 range terminates (no overflow).
    let huge = dim_buckets(&DimValues::Range {
        lo: 1,
        hi: i64::MAX,
    });
    assert_eq!(huge.last().map(|x| x.hi), Some(i64::MAX));
    assert_eq!(huge.len(), 64);
}

#[test]
fn every_declared_point_falls_in_exactly_one_bucket() {
    let spec = frontend::embedded().expect("bundled prism.toml");
    for w in &spec.workloads {
        let all = buckets(w);
        assert!(
            !all.is_empty() && all.len() <= MAX_BUCKETS,
            "{}: {}",
            w.name,
            all.len()
        );
        for p in &w.points {
            let k = bucket_of(w, p).unwrap_or_else(|| panic!("{}: {p:?}", w.name));
            let hits = all
                .iter()
                .filter(|sb| sb.dims.iter().all(|(n, bk)| bk.contains(p[n])))
                .count();
            assert_eq!(hits, 1, "{}: {p:?}", w.name);
            assert!(all[k].dims.iter().all(|(n, bk)| bk.contains(p[n])));
            // The tuning point is inside its bucket and declared.
            let t = all[k].tuning_point();
            assert_eq!(bucket_of(w, &t), Some(k), "{}: {}", w.name, all[k].label());
        }
    }
}

#[test]
fn too_many_buckets_are_coarsened_and_bad_dims_have_none() {
    let spec = frontend::embedded().expect("bundled prism.toml");
    let gqa = spec.workload("gqa_decode").expect("gqa_decode");
    // b = 1..=64 (7 buckets) and kv = 1..=8192 (14): 98 > 64, so kv (the
    // widest) is coarsened to 7, pairs of neighbours merged.
    let dims = per_dim(gqa);
    let counts: Vec<usize> = dims.iter().map(|(_, bs)| bs.len()).collect();
    assert_eq!(counts, [7, 7], "{dims:?}");
    let kv = &dims[1].1;
    assert_eq!(kv.first(), Some(&b(1, 2)));
    assert_eq!(kv.last(), Some(&b(2049, 8192)));
    // Contiguous and covering.
    for pair in kv.windows(2) {
        assert_eq!(pair[0].hi + 1, pair[1].lo);
    }
    // Out of range, missing dim: no bucket.
    let mut p = gqa.points[0].clone();
    p.insert("kv".into(), 8193);
    assert_eq!(bucket_of(gqa, &p), None);
    p.remove("kv");
    assert_eq!(bucket_of(gqa, &p), None);
    // A listed dim's unlisted value has no bucket either.
    let rms = spec.workload("rms_norm").expect("rms_norm");
    let mut p = rms.points[0].clone();
    p.insert("d".into(), 3000);
    assert_eq!(bucket_of(rms, &p), None);
}
