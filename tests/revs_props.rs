//! Property tests of the revision tree (pure functions): merging the same paths in any order
//! gives the same tree and winner; the winner is always a leaf and follows CouchDB's rule;
//! stemming never loses a leaf and keeps only revisions within `limit` of a leaf.

use couchkv::couch::revs::{Rev, RevTree};
use proptest::prelude::*;

/// A random tree as a set of paths: each path is a branch off a shared history.
fn paths() -> impl Strategy<Value = Vec<(Vec<Rev>, bool)>> {
    let branch = (1u64..6, 1usize..5, any::<bool>(), 0u8..4);
    prop::collection::vec(branch, 1..8).prop_map(|branches| {
        branches
            .into_iter()
            .map(|(fork, len, deleted, tag)| {
                // Shared trunk 1-t1 … fork-t<fork>, then a branch named by `tag`.
                let mut path: Vec<Rev> = (1..=fork)
                    .map(|p| Rev {
                        pos: p,
                        hash: format!("t{p}"),
                    })
                    .collect();
                for i in 1..=len as u64 {
                    // The hash names the fork, and the leaf's deleted flag: a revision id
                    // determines its parent and its flag, as real (content-addressed) ids do.
                    let flag = if deleted && i == len as u64 { "d" } else { "" };
                    path.push(Rev {
                        pos: fork + i,
                        hash: format!("f{fork}b{tag}x{}{flag}", fork + i),
                    });
                }
                path.reverse();
                (path, deleted)
            })
            .collect()
    })
}

fn build(paths: &[(Vec<Rev>, bool)]) -> RevTree {
    let mut t = RevTree::default();
    for (p, d) in paths {
        t.merge(p, *d);
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn merge_order_does_not_matter(paths in paths(), seed in any::<u64>()) {
        let a = build(&paths);
        let mut shuffled = paths.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in 0..n {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % n as u64) as usize;
            shuffled.swap(i, j);
        }
        let b = build(&shuffled);
        // Deleted flags belong to leaves; a path whose leaf another path extends is not a leaf,
        // so compare what clients can see.
        prop_assert_eq!(a.leaves().iter().map(|l| l.0.clone()).collect::<Vec<_>>(),
                        b.leaves().iter().map(|l| l.0.clone()).collect::<Vec<_>>());
        prop_assert_eq!(a.winner().map(|w| w.0), b.winner().map(|w| w.0));
        // Merging everything again changes nothing.
        let mut again = a.clone();
        for (p, d) in &paths {
            again.merge(p, *d);
        }
        prop_assert_eq!(again, a);
    }

    #[test]
    fn the_leaf_set_follows_every_merge(paths in paths()) {
        // The leaves the tree keeps beside its nodes are exactly those nobody descends from,
        // and `leaves_after` predicts each merge.
        let mut t = RevTree::default();
        for (p, d) in &paths {
            let predicted = t.leaves_after(p);
            t.merge(p, *d);
            prop_assert_eq!(t.leaf_count(), predicted);
            prop_assert_eq!(RevTree::from_json(&t.to_json()), Some(t.clone()));
        }
    }

    #[test]
    fn winner_is_the_best_leaf(paths in paths()) {
        let t = build(&paths);
        let (w, wd) = t.winner().unwrap();
        let leaves = t.leaves();
        prop_assert!(leaves.contains(&(w.clone(), wd)));
        for (l, d) in &leaves {
            // No leaf beats the winner: live before deleted, then pos, then hash.
            prop_assert!((!wd, w.pos, &w.hash) >= (!*d, l.pos, &l.hash));
        }
        let conflicts = t.conflicts();
        prop_assert!(!conflicts.contains(&w));
        prop_assert_eq!(conflicts.len() + t.deleted_conflicts().len() + 1, leaves.len());
    }

    #[test]
    fn stemming_keeps_leaves_and_bounds_depth(paths in paths(), limit in 1usize..5) {
        let mut t = build(&paths);
        let leaves = t.leaves();
        let winner = t.winner();
        t.stem(limit);
        prop_assert_eq!(t.leaves(), leaves);
        prop_assert_eq!(t.winner(), winner);
        // Every revision kept is within `limit` of some leaf (CouchDB's bound: a trunk kept by
        // a short branch may make a long branch's ancestry longer than `limit`).
        let near: std::collections::BTreeSet<Rev> = t
            .leaves()
            .into_iter()
            .flat_map(|(leaf, _)| t.path_to(&leaf).into_iter().take(limit))
            .collect();
        for (leaf, _) in t.leaves() {
            for rev in t.path_to(&leaf) {
                prop_assert!(near.contains(&rev), "{} is kept but far from every leaf", rev);
            }
        }
        // The stored form round-trips.
        prop_assert_eq!(RevTree::from_json(&t.to_json()), Some(t));
    }
}
