//! [`CpuMap`]: an owned set of physical CPU numbers.

use std::fmt;
use std::hash::{Hash, Hasher};

use smallvec::SmallVec;

use super::{bytes, CpuMapError};

/// Words kept in the map itself, without a heap allocation: CPUs 0-127, so the maps of a
/// host of up to 128 CPUs (the read-backs of every list, pin and reconcile) allocate
/// nothing, and a map is as small as a `Vec` (24 bytes: `smallvec`'s union layout).
const INLINE_WORDS: usize = 2;

type Words = SmallVec<[u64; INLINE_WORDS]>;

/// An owned set of CPU numbers, stored as `u64` words (CPU `i` is bit `i % 64` of word
/// `i / 64`).
///
/// Equality and hashing ignore trailing zero words, so a map read from a 4-byte libvirt
/// buffer equals the same CPUs read from a 512-byte Xen buffer. `Display` and `FromStr`
/// use the cpu-list syntax (`0-3,8,10-11`; see [`crate::cpumap::parse_cpu_list`]).
///
/// Maps of CPUs below 128 live inside the value; larger ones on the heap.
///
/// ```
/// use xenvcpu::cpumap::CpuMap;
/// let a: CpuMap = "0-3,8".parse().unwrap();
/// let b: CpuMap = [2, 3, 4].into_iter().collect();
/// assert_eq!(a.intersection(&b).to_string(), "2-3");
/// assert_eq!(a.to_libvirt_bytes(2).unwrap(), [0x0f, 0x01]);
/// ```
#[derive(Clone, Default)]
pub struct CpuMap {
    words: Words,
}

impl CpuMap {
    /// An empty map.
    pub const fn new() -> Self {
        Self { words: Words::new_const() }
    }

    /// An empty map with room for CPUs `0..ncpus` without reallocating.
    pub fn with_capacity(ncpus: usize) -> Self {
        Self { words: Words::with_capacity(ncpus.div_ceil(64)) }
    }

    /// The map of CPUs `0..ncpus`.
    pub fn all(ncpus: usize) -> Self {
        let mut words = Words::from_elem(u64::MAX, ncpus / 64);
        if ncpus % 64 != 0 {
            words.push((1u64 << (ncpus % 64)) - 1);
        }
        Self { words }
    }

    /// Reads a libvirt (or Xen) byte map: CPU `i` is bit `i % 8` of byte `i / 8`.
    pub fn from_libvirt_bytes(map: &[u8]) -> Self {
        if map.len() <= INLINE_WORDS * 8 {
            // The map fits inside the value: one load, no loop (every read-back of a host
            // of up to 128 CPUs).
            let bits = super::small::Bits256::load(map);
            let buf = [bits.lo as u64, (bits.lo >> 64) as u64];
            return Self { words: Words::from_buf_and_len(buf, map.len().div_ceil(8)) };
        }
        let mut words = Words::from_elem(0, map.len().div_ceil(8));
        bytes::bytes_to_words(map, &mut words).expect("the words hold every byte");
        Self { words }
    }

    /// Replaces the CPUs with those of a libvirt (or Xen) byte map, reusing the map's
    /// allocation: once it has held a map of this size, this allocates nothing.
    pub fn assign_libvirt_bytes(&mut self, map: &[u8]) {
        let len = map.len().div_ceil(8);
        if self.words.len() != len {
            self.words.resize(len, 0);
        }
        // Every word is written (the bytes, then zeros past them): nothing to clear first.
        bytes::bytes_to_words(map, &mut self.words).expect("the words hold every byte");
    }

    /// Writes the map into a libvirt (or Xen) byte map of `dst.len()` bytes, zeroing the
    /// bytes past the last CPU.
    ///
    /// # Errors
    /// [`CpuMapError::CpusDropped`] when a CPU is beyond `dst.len() * 8`; `dst` is then
    /// untouched.
    pub fn write_libvirt_bytes(&self, dst: &mut [u8]) -> Result<(), CpuMapError> {
        bytes::words_to_bytes(&self.words, dst)
    }

    /// The map as a libvirt byte map of `maplen` bytes.
    ///
    /// # Errors
    /// [`CpuMapError::CpusDropped`] when a CPU is beyond `maplen * 8`.
    pub fn to_libvirt_bytes(&self, maplen: usize) -> Result<Vec<u8>, CpuMapError> {
        let mut out = vec![0; maplen];
        self.write_libvirt_bytes(&mut out)?;
        Ok(out)
    }

    /// Reads `u64` words (CPU `i` = bit `i % 64` of word `i / 64`).
    pub fn from_words(words: &[u64]) -> Self {
        Self { words: Words::from_slice(words) }
    }

    /// The words, possibly with trailing zero words.
    pub fn as_words(&self) -> &[u64] {
        &self.words
    }

    /// Adds `cpu`; returns whether it was absent.
    pub fn insert(&mut self, cpu: usize) -> bool {
        let (w, bit) = (cpu / 64, 1u64 << (cpu % 64));
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let absent = self.words[w] & bit == 0;
        self.words[w] |= bit;
        absent
    }

    /// Removes `cpu`; returns whether it was present.
    pub fn remove(&mut self, cpu: usize) -> bool {
        let present = self.contains(cpu);
        if present {
            self.words[cpu / 64] &= !(1u64 << (cpu % 64));
        }
        present
    }

    /// Adds the CPUs `first..=last`.
    pub fn insert_range(&mut self, first: usize, last: usize) {
        self.update_range(first, last, true);
    }

    /// Removes the CPUs `first..=last`.
    pub fn remove_range(&mut self, first: usize, last: usize) {
        self.update_range(first, last, false);
    }

    fn update_range(&mut self, first: usize, last: usize, set: bool) {
        if first > last {
            return;
        }
        let last = if set {
            if last / 64 >= self.words.len() {
                self.words.resize(last / 64 + 1, 0);
            }
            last
        } else {
            match (self.words.len() * 64).checked_sub(1) {
                Some(end) if first <= end => last.min(end),
                _ => return,
            }
        };
        for w in first / 64..=last / 64 {
            let lo = if w == first / 64 { first % 64 } else { 0 };
            let hi = if w == last / 64 { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            if set {
                self.words[w] |= mask;
            } else {
                self.words[w] &= !mask;
            }
        }
    }

    /// Whether `cpu` is in the map.
    pub fn contains(&self, cpu: usize) -> bool {
        self.words.get(cpu / 64).is_some_and(|w| w & (1u64 << (cpu % 64)) != 0)
    }

    /// The number of CPUs in the map.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the map holds no CPU.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The lowest CPU, if any.
    pub fn first(&self) -> Option<usize> {
        self.iter().next()
    }

    /// The highest CPU, if any.
    pub fn last(&self) -> Option<usize> {
        let (i, w) = self.words.iter().enumerate().rev().find(|(_, &w)| w != 0)?;
        Some(i * 64 + 63 - w.leading_zeros() as usize)
    }

    /// The CPUs in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { words: &self.words, index: 0, current: self.words.first().copied().unwrap_or(0) }
    }

    /// The CPUs in either map.
    pub fn union(&self, other: &CpuMap) -> CpuMap {
        let (long, short) = if self.words.len() >= other.words.len() { (self, other) } else { (other, self) };
        let mut words = long.words.clone();
        words.iter_mut().zip(&short.words).for_each(|(a, b)| *a |= b);
        CpuMap { words }
    }

    /// The CPUs in both maps.
    pub fn intersection(&self, other: &CpuMap) -> CpuMap {
        let words = self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect();
        CpuMap { words }
    }

    /// The CPUs of `self` that are not in `other`.
    pub fn difference(&self, other: &CpuMap) -> CpuMap {
        let mut words = self.words.clone();
        words.iter_mut().zip(&other.words).for_each(|(a, b)| *a &= !b);
        CpuMap { words }
    }

    /// Whether the maps have a CPU in common (`!intersection(other).is_empty()`, without
    /// making the intersection).
    pub fn intersects(&self, other: &CpuMap) -> bool {
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuMap) -> bool {
        self.words.iter().enumerate().all(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0) == 0)
    }

    /// The number of meaningful words (without trailing zero words).
    fn trimmed(&self) -> &[u64] {
        let len = self.words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        &self.words[..len]
    }
}

impl PartialEq for CpuMap {
    fn eq(&self, other: &Self) -> bool {
        self.trimmed() == other.trimmed()
    }
}

impl Eq for CpuMap {}

impl Hash for CpuMap {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.trimmed().hash(state);
    }
}

impl fmt::Debug for CpuMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuMap({self})")
    }
}

impl FromIterator<usize> for CpuMap {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut map = CpuMap::new();
        iter.into_iter().for_each(|cpu| {
            map.insert(cpu);
        });
        map
    }
}

impl Extend<usize> for CpuMap {
    fn extend<I: IntoIterator<Item = usize>>(&mut self, iter: I) {
        iter.into_iter().for_each(|cpu| {
            self.insert(cpu);
        });
    }
}

impl<'a> IntoIterator for &'a CpuMap {
    type Item = usize;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

macro_rules! set_operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl std::ops::$trait<&CpuMap> for &CpuMap {
            type Output = CpuMap;
            fn $method(self, rhs: &CpuMap) -> CpuMap {
                self.$op(rhs)
            }
        }
    };
}
set_operator!(BitOr, bitor, union);
set_operator!(BitAnd, bitand, intersection);
set_operator!(Sub, sub, difference);

/// The CPUs of a [`CpuMap`] in ascending order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    words: &'a [u64],
    index: usize,
    current: u64,
}

impl Iterator for Iter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.current == 0 {
            self.index += 1;
            self.current = *self.words.get(self.index)?;
        }
        let bit = self.current.trailing_zeros() as usize;
        self.current &= self.current - 1;
        Some(self.index * 64 + bit)
    }
}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(cpus: &[usize]) -> CpuMap {
        cpus.iter().copied().collect()
    }

    #[test]
    fn byte_maps_of_every_length_read_the_same_inline_and_on_the_heap() {
        // 0-16 bytes take the inline load, longer ones the general translation: both give
        // the CPUs of the set bits, a word per 8 bytes begun, and the same bytes back.
        for len in 0..=40usize {
            for seed in 0..8u64 {
                let bytes: Vec<u8> =
                    (0..len).map(|i| ((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15 ^ seed) >> 56) as u8).collect();
                let got = CpuMap::from_libvirt_bytes(&bytes);
                let want: Vec<usize> = (0..len * 8).filter(|&c| bytes[c / 8] >> (c % 8) & 1 == 1).collect();
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{len} bytes, seed {seed}");
                assert_eq!(got.words.len(), len.div_ceil(8), "{len} bytes");
                assert_eq!(got.words.spilled(), len > 16, "{len} bytes");
                assert_eq!(got.to_libvirt_bytes(len).unwrap(), bytes, "{len} bytes, seed {seed}");
            }
        }
    }

    #[test]
    fn a_map_is_as_small_as_a_vec_and_keeps_128_cpus_inline() {
        assert_eq!(std::mem::size_of::<CpuMap>(), std::mem::size_of::<Vec<u64>>());
        assert!(!CpuMap::all(128).words.spilled());
        assert!(CpuMap::all(129).words.spilled());
        assert!(!CpuMap::from_libvirt_bytes(&[0xff; 16]).words.spilled());
    }

    #[test]
    fn insert_remove_contains() {
        let mut m = CpuMap::new();
        assert!(m.insert(70));
        assert!(!m.insert(70));
        assert!(m.contains(70) && !m.contains(69) && !m.contains(100_000));
        assert!(m.remove(70));
        assert!(!m.remove(70) && !m.remove(100_000));
        assert!(m.is_empty());
        assert_eq!(m, CpuMap::new());
    }

    #[test]
    fn equality_ignores_trailing_zero_words() {
        let mut a = map(&[1, 200]);
        a.remove(200);
        assert_eq!(a, map(&[1]));
        let mut h1 = std::collections::hash_map::DefaultHasher::new();
        let mut h2 = h1.clone();
        a.hash(&mut h1);
        map(&[1]).hash(&mut h2);
        assert_eq!(h1.finish(), h2.finish());
        assert_ne!(a, map(&[1, 2]));
    }

    #[test]
    fn algebra() {
        let a = map(&[0, 1, 2, 64, 130]);
        let b = map(&[2, 3, 130]);
        assert_eq!(&a | &b, map(&[0, 1, 2, 3, 64, 130]));
        assert_eq!(&a & &b, map(&[2, 130]));
        assert_eq!(&a - &b, map(&[0, 1, 64]));
        assert_eq!(&b - &a, map(&[3]));
        assert!(map(&[2, 130]).is_subset(&a) && !b.is_subset(&a));
        assert!(CpuMap::new().is_subset(&CpuMap::new()));
    }

    #[test]
    fn iteration_first_last_count() {
        let m = map(&[300, 0, 63, 64, 65]);
        assert_eq!(m.iter().collect::<Vec<_>>(), [0, 63, 64, 65, 300]);
        assert_eq!((m.first(), m.last(), m.count()), (Some(0), Some(300), 5));
        assert_eq!((CpuMap::new().first(), CpuMap::new().last()), (None, None));
    }

    #[test]
    fn all_and_ranges() {
        for n in [0, 1, 63, 64, 65, 128, 200] {
            assert_eq!(CpuMap::all(n).count(), n);
            assert_eq!(CpuMap::all(n).last(), n.checked_sub(1));
            let mut r = CpuMap::new();
            if n > 0 {
                r.insert_range(0, n - 1);
            }
            assert_eq!(r, CpuMap::all(n));
        }
        let mut m = CpuMap::all(200);
        m.remove_range(10, 150);
        m.remove_range(190, 10_000);
        assert_eq!(m.to_string(), "0-9,151-189");
        m.remove_range(5_000, 6_000);
        assert_eq!(m.count(), 49);
    }

    #[test]
    fn libvirt_bytes_round_trip() {
        let m = map(&[0, 9, 17]);
        let bytes = m.to_libvirt_bytes(3).unwrap();
        assert_eq!(bytes, [0x01, 0x02, 0x02]);
        assert_eq!(CpuMap::from_libvirt_bytes(&bytes), m);
        assert!(matches!(m.to_libvirt_bytes(2), Err(CpuMapError::CpusDropped { limit: 16, .. })));
        assert_eq!(CpuMap::from_words(&[0b101, 1]), map(&[0, 2, 64]));
    }
}
