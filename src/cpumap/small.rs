//! Maps of up to 32 bytes (256 CPUs), the size of nearly every real host, held in
//! registers: the translations load the source once into a 256-bit value (two `u128`
//! halves) and store it once. Zero-extension is free (the value is zero past the source)
//! and no call into libc is made. The drop checks stay on the bytes in memory, where they
//! are one comparison in the common case.
//!
//! Loads and stores jump once on the length to code specialised for it (constant sizes
//! and shifts), so the whole translation is a handful of instructions.

/// A 256-bit map: CPU `i` is bit `i % 128` of half `i / 128`.
#[derive(Clone, Copy)]
pub(super) struct Bits256 {
    pub lo: u128,
    pub hi: u128,
}

/// The largest map handled here, in bytes.
pub(super) const MAX: usize = 32;

impl Bits256 {
    /// Reads up to 32 bytes (little-endian); bits past the end are zero.
    ///
    /// # Panics
    /// If `bytes` is longer than 32.
    #[inline(always)]
    pub fn load(bytes: &[u8]) -> Self {
        // One jump on the length to code specialised for it: constant-size loads and
        // constant shifts, no variable-width arithmetic on u128.
        match bytes.len() {
            0 => load_n::<0>(bytes),
            1 => load_n::<1>(bytes),
            2 => load_n::<2>(bytes),
            3 => load_n::<3>(bytes),
            4 => load_n::<4>(bytes),
            5 => load_n::<5>(bytes),
            6 => load_n::<6>(bytes),
            7 => load_n::<7>(bytes),
            8 => load_n::<8>(bytes),
            9 => load_n::<9>(bytes),
            10 => load_n::<10>(bytes),
            11 => load_n::<11>(bytes),
            12 => load_n::<12>(bytes),
            13 => load_n::<13>(bytes),
            14 => load_n::<14>(bytes),
            15 => load_n::<15>(bytes),
            16 => load_n::<16>(bytes),
            17 => load_n::<17>(bytes),
            18 => load_n::<18>(bytes),
            19 => load_n::<19>(bytes),
            20 => load_n::<20>(bytes),
            21 => load_n::<21>(bytes),
            22 => load_n::<22>(bytes),
            23 => load_n::<23>(bytes),
            24 => load_n::<24>(bytes),
            25 => load_n::<25>(bytes),
            26 => load_n::<26>(bytes),
            27 => load_n::<27>(bytes),
            28 => load_n::<28>(bytes),
            29 => load_n::<29>(bytes),
            30 => load_n::<30>(bytes),
            31 => load_n::<31>(bytes),
            32 => load_n::<32>(bytes),
            n => panic!("a small map has at most 32 bytes, not {n}"),
        }
    }

    /// Writes the low `dst.len()` bytes (at most 32) into `dst`.
    ///
    /// # Panics
    /// If `dst` is longer than 32 bytes.
    #[inline(always)]
    pub fn store(self, dst: &mut [u8]) {
        match dst.len() {
            0 => store_n::<0>(self, dst),
            1 => store_n::<1>(self, dst),
            2 => store_n::<2>(self, dst),
            3 => store_n::<3>(self, dst),
            4 => store_n::<4>(self, dst),
            5 => store_n::<5>(self, dst),
            6 => store_n::<6>(self, dst),
            7 => store_n::<7>(self, dst),
            8 => store_n::<8>(self, dst),
            9 => store_n::<9>(self, dst),
            10 => store_n::<10>(self, dst),
            11 => store_n::<11>(self, dst),
            12 => store_n::<12>(self, dst),
            13 => store_n::<13>(self, dst),
            14 => store_n::<14>(self, dst),
            15 => store_n::<15>(self, dst),
            16 => store_n::<16>(self, dst),
            17 => store_n::<17>(self, dst),
            18 => store_n::<18>(self, dst),
            19 => store_n::<19>(self, dst),
            20 => store_n::<20>(self, dst),
            21 => store_n::<21>(self, dst),
            22 => store_n::<22>(self, dst),
            23 => store_n::<23>(self, dst),
            24 => store_n::<24>(self, dst),
            25 => store_n::<25>(self, dst),
            26 => store_n::<26>(self, dst),
            27 => store_n::<27>(self, dst),
            28 => store_n::<28>(self, dst),
            29 => store_n::<29>(self, dst),
            30 => store_n::<30>(self, dst),
            31 => store_n::<31>(self, dst),
            32 => store_n::<32>(self, dst),
            n => panic!("a small map has at most 32 bytes, not {n}"),
        }
    }
}

/// `N` bytes (`N <= 32`) as a 256-bit value, zero past them.
#[inline(always)]
fn load_n<const N: usize>(bytes: &[u8]) -> Bits256 {
    let mut all = [0u8; MAX];
    all[..N].copy_from_slice(&bytes[..N]);
    let (lo, hi) = all.split_at(16);
    Bits256 {
        lo: u128::from_le_bytes(lo.try_into().expect("16 bytes")),
        hi: u128::from_le_bytes(hi.try_into().expect("16 bytes")),
    }
}

/// Writes the low `N` bytes (`N <= 32`) of `v` into `dst`.
#[inline(always)]
fn store_n<const N: usize>(v: Bits256, dst: &mut [u8]) {
    let mut all = [0u8; MAX];
    all[..16].copy_from_slice(&v.lo.to_le_bytes());
    all[16..].copy_from_slice(&v.hi.to_le_bytes());
    dst[..N].copy_from_slice(&all[..N]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_round_trips() {
        for n in 0..=MAX {
            let src: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8 | 1).collect();
            let v = Bits256::load(&src);
            for m in n..=MAX {
                let mut dst = vec![0xa5u8; m];
                v.store(&mut dst);
                assert_eq!(&dst[..n], &src[..], "load {n} store {m}");
                assert!(dst[n..].iter().all(|&b| b == 0), "zero-extended {n} -> {m}");
            }
        }
    }
}
