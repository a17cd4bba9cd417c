//! The Merkle tree of RFC 6962 (section 2.1; verification as in RFC 9162,
//! section 2.1.3 and 2.1.4): leaf hashes `SHA-256(0x00 || entry)`, interior
//! nodes `SHA-256(0x01 || left || right)`, inclusion and consistency proofs.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of one entry as a leaf.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n` > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over `leaves` (MTH of RFC 6962).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree over `leaves` (PATH).
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The proof that the tree of the first `old_size` leaves is a prefix of
/// the tree over `leaves` (PROOF).
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(old_size, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks an inclusion proof of `leaf` at `index` in a tree of `size` with `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Checks that the tree of `old_size` with `old_root` is a prefix of the
/// tree of `new_size` with `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size || old_size == 0 {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

/// The right edge of a growing tree: the roots of its perfect subtrees,
/// so appending is O(log n) and the root is always at hand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Perfect subtree roots, largest first.
    stack: Vec<Hash>,
    /// The last leaf's left siblings inside the smallest subtree of the
    /// stack (what ties that leaf to the root), nearest first.
    last_path: Vec<Hash>,
}

impl Frontier {
    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut n = self.size;
        self.last_path.clear();
        // Each trailing one bit of the old size is a subtree of equal height to merge with.
        while n & 1 == 1 {
            if let Some(left) = self.stack.pop() {
                self.last_path.push(left);
                h = node_hash(&left, &h);
            }
            n >>= 1;
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// The state a writer resumes from, with `last_leaf` (the last leaf's
    /// hash): the size, the subtree roots and that leaf's path to the last
    /// of them.
    pub fn state(&self, last_leaf: &Hash) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * (2 + self.stack.len() + self.last_path.len()));
        out.extend_from_slice(&self.size.to_be_bytes());
        out.push(self.stack.len() as u8);
        for h in self.stack.iter().chain(std::iter::once(last_leaf)) {
            out.extend_from_slice(h);
        }
        out.push(self.last_path.len() as u8);
        for h in &self.last_path {
            out.extend_from_slice(h);
        }
        out
    }

    /// A frontier and its last leaf from [`state`](Self::state), checked:
    /// the subtrees fit the size, and the leaf hashes up to the last of
    /// them. `None`: malformed or inconsistent.
    pub fn from_state(state: &[u8]) -> Option<(Frontier, Hash)> {
        let size = u64::from_be_bytes(state.get(..8)?.try_into().ok()?);
        let mut at = 8;
        let hashes = |n: usize, at: &mut usize| -> Option<Vec<Hash>> {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(state.get(*at..*at + 32)?.try_into().ok()?);
                *at += 32;
            }
            Some(v)
        };
        let n = usize::from(*state.get(at)?);
        at += 1;
        if u32::try_from(n).ok()? != size.count_ones() {
            return None;
        }
        let stack = hashes(n, &mut at)?;
        let last_leaf = hashes(1, &mut at)?.pop()?;
        let p = usize::from(*state.get(at)?);
        at += 1;
        let last_path = hashes(p, &mut at)?;
        if at != state.len() || size == 0 {
            return None;
        }
        // The last leaf's path is as long as its subtree is high, and leads to it.
        if u32::try_from(p).ok()? != size.trailing_zeros() {
            return None;
        }
        let top = last_path
            .iter()
            .fold(last_leaf, |acc, left| node_hash(left, &acc));
        if stack.last() != Some(&top) {
            return None;
        }
        Some((
            Frontier {
                size,
                stack,
                last_path,
            },
            last_leaf,
        ))
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// A whole tree held in memory: every level of aligned perfect subtrees,
/// so many proofs cost O(log² n) each instead of O(n) (evidence packs prove
/// many entries at once).
pub struct MerkleTree {
    /// `levels[k][j]`: the root of leaves `j·2^k .. (j+1)·2^k`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the levels over `leaves`.
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|l| l.len() > 1) {
            let up: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// Leaves in the tree.
    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    /// The root of leaves `start..end` (`start` aligned to the range's split).
    fn range_root(&self, start: usize, end: usize) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.levels[n.trailing_zeros() as usize][start / n];
        }
        let k = split(n);
        node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: usize) -> Option<Hash> {
        (size <= self.size()).then(|| self.range_root(0, size))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves: the same path as [`inclusion_proof`].
    pub fn inclusion_proof(&self, index: usize, size: usize) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        let (mut start, mut end, mut m) = (0, size, index);
        // Walk down from the root; siblings come out root-first, the
        // proof lists them leaf-first.
        while end - start > 1 {
            let k = split(end - start);
            if m < k {
                out.push(self.range_root(start + k, end));
                end = start + k;
            } else {
                out.push(self.range_root(start, start + k));
                start += k;
                m -= k;
            }
        }
        out.reverse();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The reference leaves and roots of RFC 6962's test data (as published
    /// with the Certificate Transparency implementations).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).unwrap()))
            .collect()
    }

    #[test]
    fn roots_match_the_reference() {
        let leaves = reference();
        let mut f = Frontier::default();
        assert_eq!(hex::encode(f.root()), ROOTS[0]);
        for n in 1..=8 {
            assert_eq!(hex::encode(root(&leaves[..n])), ROOTS[n], "size {n}");
            f.push(leaves[n - 1]);
            assert_eq!(hex::encode(f.root()), ROOTS[n], "frontier size {n}");
        }
        let proof = inclusion_proof(0, &leaves).unwrap();
        let want = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(proof, want.map(unhex).to_vec());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn proofs_verify_and_tampering_fails(n in 1usize..80, seed in any::<u8>()) {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[seed, i as u8, (i >> 8) as u8])).collect();
            let r = root(&leaves);
            let mut f = Frontier::default();
            for l in &leaves {
                f.push(*l);
            }
            prop_assert_eq!(f.root(), r);
            for i in 0..n {
                let p = inclusion_proof(i, &leaves).unwrap();
                prop_assert!(verify_inclusion(i as u64, n as u64, &leaves[i], &p, &r));
                prop_assert!(!verify_inclusion(i as u64, n as u64, &leaf_hash(b"x"), &p, &r));
                if n > 1 {
                    prop_assert!(!verify_inclusion(((i + 1) % n) as u64, n as u64, &leaves[i], &p, &r));
                }
            }
            let tree = MerkleTree::new(leaves.clone());
            for size in [1, n / 2 + 1, n] {
                prop_assert_eq!(tree.root_at(size), Some(root(&leaves[..size])));
                for i in 0..size {
                    prop_assert_eq!(tree.inclusion_proof(i, size), inclusion_proof(i, &leaves[..size]));
                }
            }
            prop_assert_eq!(tree.inclusion_proof(n, n), None);
            for m in 1..=n {
                let p = consistency_proof(m, &leaves).unwrap();
                let old = root(&leaves[..m]);
                prop_assert!(verify_consistency(m as u64, n as u64, &old, &r, &p));
                if m < n {
                    prop_assert!(!verify_consistency(m as u64, n as u64, &leaf_hash(b"x"), &r, &p));
                }
            }
        }
    }

    proptest! {
        /// The stored state comes from a file anyone with access may edit:
        /// any bytes are read or refused, never a panic.
        #[test]
        fn any_stored_state_is_read_or_refused(state in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Frontier::from_state(&state);
        }

        /// A frontier's state reads back as the same frontier, for any size;
        /// a different last leaf is refused.
        #[test]
        fn a_frontier_state_round_trips(n in 1usize..300, seed in any::<u8>()) {
            let mut f = Frontier::default();
            let mut last = [0; 32];
            for i in 0..n {
                last = leaf_hash(&[seed, i as u8, (i >> 8) as u8]);
                f.push(last);
            }
            let (back, leaf) = Frontier::from_state(&f.state(&last)).unwrap();
            prop_assert_eq!(&back, &f);
            prop_assert_eq!(leaf, last);
            prop_assert!(Frontier::from_state(&f.state(&leaf_hash(b"other"))).is_none());
        }
    }
}
