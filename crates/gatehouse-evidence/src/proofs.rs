//! Inclusion proofs of chosen leaves, computed in one streaming pass over
//! the leaf hashes, without holding the tree (for logs too large for
//! [`MerkleTree`](crate::merkle::MerkleTree)).
//!
//! Every node of the RFC 6962 tree of `size` leaves is one of two kinds:
//!
//! - a *perfect* subtree, leaves `k·2^h .. (k+1)·2^h` (all left children
//!   are, and so is every node below one), or
//! - a node of the *right spine*, leaves `a .. size` with `a` the start of
//!   one of the perfect pieces that `size` splits into (one per set bit of
//!   `size`, largest first).
//!
//! [`ProofPlan::new`] walks PATH(m, D\[0:size\]) of each wanted leaf `m`
//! without hashes and keeps, per height, the sorted positions `k` of the
//! perfect siblings it meets. While the leaves are pushed, a frontier (the
//! perfect subtrees completed so far, largest first, as in
//! [`Frontier`](crate::merkle::Frontier)) finishes the perfect subtrees of
//! each height in order `k = 0, 1, 2, …`, so a per-height cursor tells in one
//! comparison whether the subtree just finished is wanted. After the last
//! leaf the frontier holds exactly the pieces of `size`; the spine nodes are
//! their folds from the right, O(log size) hashes.
//!
//! Memory: the wanted set and one hash per distinct perfect sibling, O(W ·
//! log size) for W wanted leaves, plus the frontier, O(log size). Each push
//! costs what [`Frontier`](crate::merkle::Frontier)'s does (one hash
//! amortised, at most log size) plus one comparison per finished subtree.

use std::collections::{BTreeMap, BTreeSet};

use crate::merkle::{empty_root, node_hash, Hash};

/// Inclusion proofs of chosen leaves in the tree of `size` leaves, computed
/// while the leaves stream past in order.
#[derive(Clone, Debug)]
pub struct ProofPlan {
    size: u64,
    /// Leaves pushed so far (at most `size`).
    pushed: u64,
    /// The leaves to prove, without duplicates.
    wanted: BTreeSet<u64>,
    /// Per height `h`: the perfect subtrees of that height that some proof needs.
    levels: Vec<Level>,
    /// Roots of the perfect subtrees completed so far, largest first: one
    /// per set bit of `pushed`.
    stack: Vec<Hash>,
    /// The older tree size a consistency proof is wanted from.
    consistency_from: Option<u64>,
}

/// The wanted perfect subtrees of one height.
#[derive(Clone, Debug, Default)]
struct Level {
    /// Their positions `k` (leaves `k·2^h .. (k+1)·2^h`), sorted, distinct.
    wanted: Vec<u64>,
    /// The roots of `wanted[..found.len()]`: subtrees of a height finish
    /// in order of position, so this fills from the front.
    found: Vec<Hash>,
}

/// What [`ProofPlan::finish`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proofs {
    /// The root of the tree of `size` leaves (to compare with a checkpoint).
    pub root: Hash,
    /// Each wanted leaf index with its inclusion proof (the RFC 6962 PATH,
    /// leaf to root): the same as
    /// [`MerkleTree::inclusion_proof`](crate::merkle::MerkleTree::inclusion_proof).
    pub proofs: BTreeMap<u64, Vec<Hash>>,
}

/// A node of the tree, named by its leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    /// Leaves `index·2^height .. (index+1)·2^height`.
    Perfect { height: u32, index: u64 },
    /// Leaves `start .. size`, not a perfect subtree.
    Spine { start: u64 },
}

impl Node {
    fn of(start: u64, end: u64) -> Node {
        let len = end - start;
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let height = len.trailing_zeros();
            Node::Perfect {
                height,
                index: start >> height,
            }
        } else {
            Node::Spine { start }
        }
    }
}

/// Calls `f` with each sibling on PATH(m, D\[0:size\]), root first (the
/// walk of `MerkleTree::inclusion_proof`). `m < size`.
fn siblings(m: u64, size: u64, mut f: impl FnMut(Node)) {
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        // The largest power of two below the range's length.
        let k = 1u64 << (end - start - 1).ilog2();
        if m < start + k {
            f(Node::of(start + k, end));
            end = start + k;
        } else {
            f(Node::of(start, start + k));
            start += k;
        }
    }
}

impl ProofPlan {
    /// A plan to prove the leaves `wanted` (any order, duplicates allowed)
    /// in the tree of `size` leaves. `None` if one is not below `size`.
    pub fn new(size: u64, wanted: impl IntoIterator<Item = u64>) -> Option<Self> {
        let wanted: BTreeSet<u64> = wanted.into_iter().collect();
        if wanted.last().is_some_and(|&m| m >= size) {
            return None;
        }
        let heights = if size == 0 {
            0
        } else {
            size.ilog2() as usize + 1
        };
        let mut levels = vec![Level::default(); heights];
        for &m in &wanted {
            siblings(m, size, |node| {
                if let Node::Perfect { height, index } = node {
                    levels[height as usize].wanted.push(index);
                }
            });
        }
        for l in &mut levels {
            l.wanted.sort_unstable();
            l.wanted.dedup();
            l.wanted.shrink_to_fit();
            l.found.reserve_exact(l.wanted.len());
        }
        Some(Self {
            size,
            pushed: 0,
            wanted,
            levels,
            stack: Vec::with_capacity(heights),
            consistency_from: None,
        })
    }

    /// Also the consistency proof from the tree of the first `old` leaves
    /// ([`KnownNodes::consistency`]); `None` unless `0 < old <= size` and
    /// no leaf was pushed yet.
    pub fn with_consistency(mut self, old: u64) -> Option<Self> {
        if old == 0 || old > self.size || self.pushed > 0 {
            return None;
        }
        consistency_nodes(old, self.size, &mut |node| {
            if let Node::Perfect { height, index } = node {
                if let Some(l) = self.levels.get_mut(height as usize) {
                    l.wanted.push(index);
                }
            }
        });
        for l in &mut self.levels {
            l.wanted.sort_unstable();
            l.wanted.dedup();
            l.found
                .reserve_exact(l.wanted.len().saturating_sub(l.found.capacity()));
        }
        self.consistency_from = Some(old);
        Some(self)
    }

    /// The next leaf hash (leaves 0, 1, 2, … in order). Leaves past `size`
    /// are outside the tree and ignored (see [`remaining`](Self::remaining)).
    pub fn push(&mut self, leaf: &Hash) {
        if self.pushed == self.size {
            return;
        }
        let mut h = *leaf;
        let mut height = 0;
        let mut index = self.pushed;
        self.note(height, index, &h);
        // Each trailing one bit of the old count is a subtree of equal height to merge with.
        while index & 1 == 1 {
            let Some(left) = self.stack.pop() else {
                // Impossible: the stack has one subtree per set bit of `pushed`.
                break;
            };
            h = node_hash(&left, &h);
            height += 1;
            index >>= 1;
            self.note(height, index, &h);
        }
        self.stack.push(h);
        self.pushed += 1;
    }

    /// Records the perfect subtree `index` of `height`, just finished, if wanted.
    fn note(&mut self, height: u32, index: u64, h: &Hash) {
        if let Some(l) = self.levels.get_mut(height as usize) {
            if l.wanted.get(l.found.len()) == Some(&index) {
                l.found.push(*h);
            }
        }
    }

    /// How many leaves it still needs.
    pub fn remaining(&self) -> u64 {
        self.size - self.pushed
    }

    /// After `size` pushes: the root and each wanted leaf with its proof;
    /// `None` if fewer were pushed.
    pub fn finish(self) -> Option<Proofs> {
        let known = self.known()?;
        let proofs = known
            .wanted
            .iter()
            .filter_map(|&m| Some((m, known.path(m)?)))
            .collect();
        Some(Proofs {
            root: known.root,
            proofs,
        })
    }

    /// After `size` pushes: the nodes every wanted proof is made of, each
    /// proof built when asked ([`KnownNodes::path`]), so that many proofs
    /// take the memory of their distinct nodes, not of their paths; `None`
    /// if fewer were pushed.
    pub fn known(self) -> Option<KnownNodes> {
        if self.pushed != self.size {
            return None;
        }
        // The spine nodes: leaves `start .. size` for each piece's start,
        // folded from the right. The first is the root.
        let mut spine: Vec<(u64, Hash)> = Vec::with_capacity(self.stack.len());
        let mut end = self.size;
        let mut acc: Option<Hash> = None;
        for (piece, bit) in self.stack.iter().rev().zip(
            (0..u64::BITS)
                .filter(|b| self.size >> b & 1 == 1)
                .map(|b| 1u64 << b),
        ) {
            let h = match acc {
                None => *piece,
                Some(right) => node_hash(piece, &right),
            };
            end -= bit;
            spine.push((end, h));
            acc = Some(h);
        }
        Some(KnownNodes {
            root: acc.unwrap_or_else(empty_root),
            consistency_from: self.consistency_from,
            size: self.size,
            wanted: self.wanted,
            levels: self.levels,
            spine,
        })
    }
}

/// The nodes the wanted proofs are made of, after the last leaf.
#[derive(Clone, Debug)]
pub struct KnownNodes {
    /// The root of the tree.
    pub root: Hash,
    consistency_from: Option<u64>,
    size: u64,
    wanted: BTreeSet<u64>,
    levels: Vec<Level>,
    spine: Vec<(u64, Hash)>,
}

impl KnownNodes {
    /// The inclusion proof of leaf `m` (leaf to root); `None` unless `m`
    /// was wanted.
    pub fn path(&self, m: u64) -> Option<Vec<Hash>> {
        if !self.wanted.contains(&m) {
            return None;
        }
        let mut path = Vec::new();
        let mut complete = true;
        siblings(m, self.size, |node| match self.hash_of(node) {
            Some(h) => path.push(h),
            None => complete = false,
        });
        path.reverse();
        complete.then_some(path)
    }

    /// The consistency proof (RFC 6962 PROOF) from the tree of its first
    /// `old` leaves to this one; `None` unless the plan was made
    /// [`with_consistency`](ProofPlan::with_consistency) from `old`.
    pub fn consistency(&self, old: u64) -> Option<Vec<Hash>> {
        if self.consistency_from != Some(old) {
            return None;
        }
        let mut proof = Vec::new();
        let mut complete = true;
        consistency_nodes(old, self.size, &mut |node| match self.hash_of(node) {
            Some(h) => proof.push(h),
            None => complete = false,
        });
        complete.then_some(proof)
    }

    /// A node's hash, known after the last leaf. Every node a plan listed
    /// was finished during the pushes (a perfect subtree) or starts at a
    /// piece of `size` (the spine); a missing one is a bug, answered with
    /// `None`.
    fn hash_of(&self, node: Node) -> Option<Hash> {
        match node {
            Node::Perfect { height, index } => {
                let l = self.levels.get(height as usize)?;
                l.wanted
                    .binary_search(&index)
                    .ok()
                    .and_then(|i| l.found.get(i))
                    .copied()
            }
            Node::Spine { start } => self
                .spine
                .iter()
                .find(|(s, _)| *s == start)
                .map(|(_, h)| *h),
        }
    }
}

/// Calls `f` with each node of SUBPROOF(m, D\[start:end\], whole), in the
/// order RFC 6962 lists them (the walk of `merkle::consistency_proof`).
fn consistency_walk(m: u64, start: u64, end: u64, whole: bool, f: &mut impl FnMut(Node)) {
    let n = end - start;
    if m == n {
        if !whole {
            f(Node::of(start, end));
        }
        return;
    }
    let k = 1u64 << (n - 1).ilog2();
    if m <= k {
        consistency_walk(m, start, start + k, whole, f);
        f(Node::of(start + k, end));
    } else {
        consistency_walk(m - k, start + k, end, false, f);
        f(Node::of(start, start + k));
    }
}

/// The nodes of the consistency proof from `old` leaves to `size` (every
/// one a node of the tree of `size`). `0 < old <= size`.
fn consistency_nodes(old: u64, size: u64, f: &mut impl FnMut(Node)) {
    consistency_walk(old, 0, size, true, f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root, verify_inclusion, MerkleTree};
    use proptest::prelude::*;

    proptest! {
        /// Consistency proofs streamed equal the in-memory ones and verify.
        #[test]
        fn consistency_proofs_match_the_tree(n in 1u64..200, old_frac in 0.0f64..=1.0, seed in any::<u8>()) {
            let old = ((n as f64 * old_frac) as u64).clamp(1, n);
            let all = leaves(n, seed);
            let mut plan = ProofPlan::new(n, [n - 1]).unwrap().with_consistency(old).unwrap();
            for l in &all {
                plan.push(l);
            }
            let known = plan.known().unwrap();
            let streamed = known.consistency(old).unwrap();
            let reference = crate::merkle::consistency_proof(old as usize, &all).unwrap();
            prop_assert_eq!(&streamed, &reference);
            prop_assert!(crate::merkle::verify_consistency(
                old,
                n,
                &root(&all[..old as usize]),
                &root(&all),
                &streamed
            ));
            // And the inclusion proof alongside is unchanged.
            prop_assert_eq!(known.path(n - 1), MerkleTree::new(all.clone()).inclusion_proof((n - 1) as usize, n as usize));
        }
    }

    fn leaves(n: u64, seed: u8) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&[seed, i as u8, (i >> 8) as u8]))
            .collect()
    }

    fn stream(size: u64, wanted: &[u64], leaves: &[Hash]) -> Option<Proofs> {
        let mut plan = ProofPlan::new(size, wanted.iter().copied())?;
        for l in leaves {
            plan.push(l);
        }
        plan.finish()
    }

    #[test]
    fn one_leaf_and_out_of_range() {
        let l = leaves(1, 7);
        let p = stream(1, &[0, 0], &l).unwrap();
        assert_eq!(p.root, l[0]);
        assert_eq!(p.proofs, BTreeMap::from([(0, vec![])]));
        assert!(ProofPlan::new(1, [1]).is_none());
        assert!(ProofPlan::new(5, [0, 5]).is_none());
        assert!(ProofPlan::new(0, [0]).is_none());
        let empty = stream(0, &[], &[]).unwrap();
        assert_eq!(empty.root, empty_root());
        assert!(empty.proofs.is_empty());
    }

    #[test]
    fn too_few_leaves_finish_nothing_and_extra_ones_are_ignored() {
        let l = leaves(10, 1);
        let mut plan = ProofPlan::new(6, [2, 5]).unwrap();
        for leaf in &l[..5] {
            plan.push(leaf);
        }
        assert_eq!(plan.remaining(), 1);
        assert!(plan.clone().finish().is_none());
        for leaf in &l[5..] {
            plan.push(leaf);
        }
        assert_eq!(plan.remaining(), 0);
        let p = plan.finish().unwrap();
        let tree = MerkleTree::new(l.clone());
        assert_eq!(p.root, root(&l[..6]));
        assert_eq!(p.proofs[&2], tree.inclusion_proof(2, 6).unwrap());
        assert_eq!(p.proofs[&5], tree.inclusion_proof(5, 6).unwrap());
    }

    fn size_and_wanted() -> impl Strategy<Value = (u64, Vec<u64>)> {
        (1u64..300).prop_flat_map(|n| {
            let picks = prop::collection::vec(0..n, 0..12);
            let edges = prop::collection::vec(prop::sample::select(vec![0, n - 1, n / 2]), 0..4);
            (Just(n), picks, edges).prop_map(|(n, mut picks, edges)| {
                picks.extend(edges);
                // A duplicate, when there is something to duplicate.
                if let Some(&first) = picks.first() {
                    picks.push(first);
                }
                (n, picks)
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn streamed_proofs_equal_the_whole_tree_ones((n, wanted) in size_and_wanted(), seed in any::<u8>()) {
            let l = leaves(n, seed);
            let p = stream(n, &wanted, &l).unwrap();
            let r = root(&l);
            prop_assert_eq!(p.root, r);
            let distinct: BTreeSet<u64> = wanted.iter().copied().collect();
            prop_assert_eq!(p.proofs.keys().copied().collect::<BTreeSet<_>>(), distinct);
            let tree = MerkleTree::new(l.clone());
            for (&i, proof) in &p.proofs {
                prop_assert_eq!(Some(proof.clone()), tree.inclusion_proof(i as usize, n as usize));
                prop_assert!(verify_inclusion(i, n, &l[i as usize], proof, &r));
            }
        }

        /// Every leaf wanted at once, in a tree smaller than the leaves pushed.
        #[test]
        fn all_leaves_of_a_prefix(n in 1u64..300, extra in 0u64..5, seed in any::<u8>()) {
            let l = leaves(n + extra, seed);
            let all: Vec<u64> = (0..n).rev().collect();
            let p = stream(n, &all, &l).unwrap();
            let tree = MerkleTree::new(l.clone());
            prop_assert_eq!(Some(p.root), tree.root_at(n as usize));
            for i in 0..n {
                prop_assert_eq!(Some(p.proofs[&i].clone()), tree.inclusion_proof(i as usize, n as usize));
            }
        }
    }
}
