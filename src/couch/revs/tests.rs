//! The revision tree's pure functions, tested without I/O.

use super::*;

fn r(s: &str) -> Rev {
    Rev::parse(s).unwrap()
}

fn path(revs: &[&str]) -> Vec<Rev> {
    revs.iter().map(|s| r(s)).collect()
}

#[test]
fn parse_and_print() {
    assert_eq!(r("3-abc").to_string(), "3-abc");
    assert_eq!(r("3-totally_fake_rev").hash, "totally_fake_rev");
    assert_eq!(r("1-").to_string(), "1-");
    for bad in ["", "3", "0-a", "-a", "x-a", "3-a b", "3-ä", "3-a\0"] {
        assert_eq!(Rev::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn linear_history_and_winner() {
    let mut t = RevTree::default();
    assert_eq!(t.merge(&path(&["1-a"]), false), Merge::Added);
    assert_eq!(t.merge(&path(&["2-b", "1-a"]), false), Merge::Added);
    assert_eq!(t.merge(&path(&["2-b", "1-a"]), false), Merge::Known);
    assert_eq!(t.leaves(), vec![(r("2-b"), false)]);
    assert_eq!(t.winner(), Some((r("2-b"), false)));
    assert!(t.conflicts().is_empty());
    assert_eq!(
        t.revisions(&r("2-b")),
        Revisions {
            start: 2,
            ids: vec!["b".into(), "a".into()]
        }
    );
}

#[test]
fn conflicts_pick_a_deterministic_winner() {
    let mut t = RevTree::default();
    t.merge(&path(&["2-b", "1-a"]), false);
    t.merge(&path(&["2-c", "1-a"]), false);
    t.merge(&path(&["3-d", "2-b", "1-a"]), true);
    // The deleted 3-d loses to the live 2-c despite its higher pos.
    assert_eq!(t.winner(), Some((r("2-c"), false)));
    assert!(t.conflicts().is_empty());
    assert_eq!(t.deleted_conflicts(), vec![r("3-d")]);
    // Among live leaves: higher pos, then greater hash.
    t.merge(&path(&["2-z", "1-a"]), false);
    assert_eq!(t.winner(), Some((r("2-z"), false)));
    assert_eq!(t.conflicts(), vec![r("2-c")]);
    // All deleted: the deleted leaf with the highest pos wins.
    let mut d = RevTree::default();
    d.merge(&path(&["2-b", "1-a"]), true);
    d.merge(&path(&["3-x", "2-c", "1-a"]), true);
    assert_eq!(d.winner(), Some((r("3-x"), true)));
    // The winner does not depend on the order of merges.
    let mut e = RevTree::default();
    e.merge(&path(&["3-x", "2-c", "1-a"]), true);
    e.merge(&path(&["2-b", "1-a"]), true);
    assert_eq!(e.winner(), d.winner());
}

#[test]
fn stemming_keeps_limit_revisions_per_leaf() {
    let mut t = RevTree::default();
    let long: Vec<Rev> = (1..=10).rev().map(|i| r(&format!("{i}-h{i}"))).collect();
    t.merge(&long, false);
    let forgotten = t.stem(3);
    assert_eq!(forgotten.len(), 7);
    assert_eq!(t.path_to(&r("10-h10")), path(&["10-h10", "9-h9", "8-h8"]));
    // A stemmed tree still merges a newer path that overlaps it.
    assert_eq!(
        t.merge(&path(&["11-h11", "10-h10", "9-h9"]), false),
        Merge::Added
    );
    assert_eq!(t.winner().unwrap().0, r("11-h11"));
    // A path that brings back an ancestor reattaches the root.
    t.merge(&path(&["8-h8", "7-h7"]), false);
    assert_eq!(t.path_to(&r("11-h11")).len(), 5);
    assert_eq!(t.leaves(), vec![(r("11-h11"), false)]);
}

#[test]
fn revs_diff_and_leaves_under() {
    let mut t = RevTree::default();
    t.merge(&path(&["2-b", "1-a"]), false);
    t.merge(&path(&["2-c", "1-a"]), false);
    let (missing, anc) = t.revs_diff(&path(&["2-b", "3-x", "1-a"]));
    assert_eq!(missing, path(&["3-x"]));
    assert_eq!(anc, path(&["2-b", "2-c"]));
    assert_eq!(t.leaves_under(&r("1-a")), path(&["2-b", "2-c"]));
    assert_eq!(t.leaves_under(&r("2-c")), path(&["2-c"]));
}

#[test]
fn json_roundtrip() {
    let mut t = RevTree::default();
    t.merge(&path(&["3-c", "2-b", "1-a"]), true);
    t.merge(&path(&["2-x", "1-a"]), false);
    t.stem(2);
    assert_eq!(RevTree::from_json(&t.to_json()), Some(t));
}

#[test]
fn new_revs_are_deterministic() {
    let body = serde_json::json!({"b": 1, "a": [1, 2]});
    let a = new_rev(None, false, &body, &[]).unwrap();
    let b = new_rev(None, false, &serde_json::json!({"a": [1, 2], "b": 1}), &[]).unwrap();
    assert_eq!(a, b, "key order does not matter");
    // The same id as before documents kept their field order (sorted keys then).
    assert_eq!(a.hash, "6218f91fd3daef55092fa53ee3179a28");
    assert_eq!(a.pos, 1);
    assert_eq!(a.hash.len(), 32);
    assert_ne!(Some(a.clone()), new_rev(None, true, &body, &[]));
    let child = new_rev(Some(&a), false, &body, &[]).unwrap();
    assert_eq!(child.pos, 2);
    assert_ne!(child.hash, a.hash);
    assert_ne!(new_rev(None, false, &body, &["md5-x".into()]), Some(a));
}

#[test]
fn positions_never_wrap() {
    assert_eq!(Rev::parse("18446744073709551615-aa"), None);
    assert_eq!(Rev::parse(&format!("{}-aa", MAX_REV_POS + 1)), None);
    let top = Rev::parse(&format!("{MAX_REV_POS}-aa")).unwrap();
    assert_eq!(
        new_rev(Some(&top), false, &serde_json::json!({}), &[]),
        None
    );
    let below = Rev::parse(&format!("{}-aa", MAX_REV_POS - 1)).unwrap();
    assert_eq!(
        new_rev(Some(&below), false, &serde_json::json!({}), &[]).map(|r| r.pos),
        Some(MAX_REV_POS)
    );
    let huge = Revisions {
        start: u64::MAX,
        ids: vec!["a".into()],
    };
    assert_eq!(huge.path(1000), None);
}

#[test]
fn leaves_are_kept_in_step_with_the_tree() {
    let mut t = RevTree::default();
    // A path arriving root-less first, then its ancestors: the old root is no leaf.
    t.merge(&path(&["3-c", "2-b"]), false);
    assert_eq!(t.leaves(), vec![(r("3-c"), false)]);
    assert_eq!(t.leaves_after(&path(&["4-d", "3-c"])), 1);
    assert_eq!(t.leaves_after(&path(&["2-x", "1-a"])), 2);
    assert_eq!(t.leaves_after(&path(&["3-c"])), 1);
    t.merge(&path(&["2-b", "1-a"]), false);
    assert_eq!(t.leaves(), vec![(r("3-c"), false)]);
    assert_eq!(t.path_to(&r("3-c")).len(), 3);
    t.merge(&path(&["2-x", "1-a"]), true);
    assert!(t.is_leaf(&r("2-x")) && !t.is_leaf(&r("1-a")));
    assert_eq!(t.leaf_count(), 2);
    // What is stored comes back with the same leaves.
    assert_eq!(RevTree::from_json(&t.to_json()), Some(t.clone()));
    // leaves_after agrees with merge on random-ish branching.
    let mut u = RevTree::default();
    for i in 0..50u64 {
        let p = path(&[
            &format!("{}-b{i}", i % 7 + 2),
            &format!("{}-a{}", i % 7 + 1, i % 3),
        ]);
        let predicted = u.leaves_after(&p);
        u.merge(&p, false);
        assert_eq!(u.leaf_count(), predicted, "step {i}");
        assert_eq!(
            Some(u.clone()),
            RevTree::from_json(&u.to_json()),
            "step {i}"
        );
    }
}

#[test]
fn purging_removes_a_branch_up_to_its_fork() {
    let mut t = RevTree::default();
    t.merge(&path(&["3-c", "2-b", "1-a"]), false);
    t.merge(&path(&["3-x", "2-w", "1-a"]), false);
    assert!(t.purge(&r("2-b")).is_empty(), "not a leaf");
    assert_eq!(t.purge(&r("3-x")), path(&["3-x", "2-w"]));
    assert_eq!(t.leaves(), vec![(r("3-c"), false)]);
    assert_eq!(RevTree::from_json(&t.to_json()), Some(t.clone()));
    assert_eq!(t.purge(&r("3-c")), path(&["3-c", "2-b", "1-a"]));
    assert!(t.is_empty() && t.leaves().is_empty());
}

#[test]
fn merging_is_linear_in_the_path() {
    // 100 disjoint branches of 1,000 revisions each: a quadratic merge or leaf scan would
    // take minutes here.
    let mut t = RevTree::default();
    for b in 0..100u64 {
        let p: Vec<Rev> = (1..=1000u64)
            .rev()
            .map(|i| Rev {
                pos: i,
                hash: format!("b{b}x{i}"),
            })
            .collect();
        t.merge(&p, false);
        assert_eq!(t.leaf_count() as u64, b + 1);
        assert!(t.winner().is_some());
    }
    assert_eq!(t.len(), 100_000);
    assert!(t.stem(1000).is_empty());
}
