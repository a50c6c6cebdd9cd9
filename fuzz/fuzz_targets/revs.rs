//! Revision strings and the revision tree: parsing never panics and round-trips; merging any
//! paths in any order keeps the tree's promises (leaves contain what was merged, the winner is a
//! leaf, JSON round-trips, stemming keeps the winner).
#![no_main]

use arbitrary::Arbitrary;
use couchkv::couch::revs::{Rev, RevTree, Revisions};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    raw: Vec<String>,
    /// (newest position, hashes as indexes into a small alphabet so paths overlap, deleted)
    paths: Vec<(u8, Vec<u8>, bool)>,
    stem: u8,
}

fuzz_target!(|input: Input| {
    for s in &input.raw {
        if let Some(rev) = Rev::parse(s) {
            assert_eq!(Rev::parse(&rev.to_string()), Some(rev));
        }
    }
    let mut tree = RevTree::default();
    let mut merged = Vec::new();
    for (start, hashes, deleted) in input.paths.iter().take(32) {
        let ids: Vec<String> = hashes
            .iter()
            .take(16)
            .map(|h| format!("h{}", h % 4))
            .collect();
        let revisions = Revisions {
            start: u64::from(*start),
            ids,
        };
        let Some(path) = revisions.path(1000) else { continue };
        tree.merge(&path, *deleted);
        merged.push(path[0].clone());
    }
    for rev in &merged {
        assert!(tree.contains(rev), "merged {rev} is in the tree");
    }
    if let Some((winner, _)) = tree.winner() {
        assert!(tree.is_leaf(&winner));
        let back = RevTree::from_json(&tree.to_json()).expect("its own JSON parses");
        assert_eq!(back.winner(), tree.winner());
        assert_eq!(back.leaves(), tree.leaves());
        let limit = usize::from(input.stem.max(1));
        tree.stem(limit);
        assert!(tree.contains(&winner), "stemming keeps the leaves");
    }
});
