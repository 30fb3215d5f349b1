//! Fixed-size moves for the translations past the 32-byte maps of `small.rs`: copies,
//! fills and zero tests as straight-line loads and stores where a call into libc would
//! cost more than the work, and libc's `memcpy`/`memset` where their wider vectors win.
//!
//! A length `n` in `K + 1..=2K` is covered by two `K`-byte moves, at the front and at the
//! back, which overlap when `n < 2K`; since both write the same bytes, the overlap is
//! harmless. There are no byte loops here on purpose: LLVM turns them into `memcpy` calls.
//!
//! Measured (`cargo bench --bench cpumap`, paired with memcpy): this crate is built for
//! baseline x86-64 and moves 16 bytes at a time, while glibc's `memcpy` uses the widest
//! vectors the CPU has. Up to [`COPY_INLINE_MAX`] bytes an inline copy still beats the
//! call; past it the call costs less than the extra stores, so longer copies go to libc.
//! Fills stay inline up to [`ZERO_INLINE_MAX`] bytes. Size classes are reached by a ladder
//! of comparisons ([`ladder`]), which measured faster than a jump table on the length.

/// Up to this many bytes (2048 CPUs), zero tests are inline; longer ones loop out of line.
pub(super) const INLINE_MAX: usize = 256;

/// One fixed-size piece of work: `K` elements starting at element `at`.
pub(super) trait Step {
    fn step<const K: usize>(&mut self, at: usize);
}

/// Covers elements `0..n` (`n <= 256`) with two overlapping `step`s of the power of two
/// `K` with `K < n <= 2K` (four steps of 64 for `129..=256`). The size class is found by a
/// ladder of comparisons, larger sizes first: no jump table, so the classes of long maps
/// are reached in two or three predicted branches.
#[inline(always)]
pub(super) fn ladder<S: Step>(n: usize, s: &mut S) {
    if n > 32 {
        if n > 128 {
            s.step::<64>(0);
            s.step::<64>(64);
            s.step::<64>(n - 128);
            s.step::<64>(n - 64);
        } else if n > 64 {
            pair::<S, 64>(n, s)
        } else {
            pair::<S, 32>(n, s)
        }
    } else if n > 8 {
        if n > 16 {
            pair::<S, 16>(n, s)
        } else {
            pair::<S, 8>(n, s)
        }
    } else if n > 2 {
        if n > 4 {
            pair::<S, 4>(n, s)
        } else {
            pair::<S, 2>(n, s)
        }
    } else if n > 0 {
        pair::<S, 1>(n, s)
    }
}

#[inline(always)]
fn pair<S: Step, const K: usize>(n: usize, s: &mut S) {
    s.step::<K>(0);
    s.step::<K>(n - K);
}

/// Copies `src` into `dst` of the same length.
struct Copy<'a, 'b> {
    src: &'a [u8],
    dst: &'b mut [u8],
}

impl Step for Copy<'_, '_> {
    #[inline(always)]
    fn step<const K: usize>(&mut self, at: usize) {
        let s: &[u8; K] = self.src[at..at + K].try_into().expect("K bytes");
        let d: &mut [u8; K] = (&mut self.dst[at..at + K]).try_into().expect("K bytes");
        *d = *s;
    }
}

/// Zeroes `dst`.
struct Zero<'a>(&'a mut [u8]);

impl Step for Zero<'_> {
    #[inline(always)]
    fn step<const K: usize>(&mut self, at: usize) {
        let d: &mut [u8; K] = (&mut self.0[at..at + K]).try_into().expect("K bytes");
        *d = [0; K];
    }
}

/// `dst.copy_from_slice(src)`, inline up to [`COPY_INLINE_MAX`] bytes.
///
/// # Panics
/// If the lengths differ.
#[inline(always)]
pub(super) fn copy_bytes(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    if n > COPY_INLINE_MAX {
        dst.copy_from_slice(src);
    } else {
        let dst = &mut dst[..n];
        ladder(n, &mut Copy { src, dst });
    }
}

/// `dst.fill(0)`, inline up to [`ZERO_INLINE_MAX`] bytes.
#[inline(always)]
pub(super) fn zero_bytes(dst: &mut [u8]) {
    let n = dst.len();
    if n > ZERO_INLINE_MAX {
        dst.fill(0);
    } else {
        ladder(n, &mut Zero(dst));
    }
}

/// Copies `src` to the front of `dst` (`src.len() <= dst.len()`) and zeroes the rest.
///
/// Copies of more than [`COPY_INLINE_MAX`] bytes go to libc's `memcpy`, which uses the
/// machine's widest vectors (this crate is built for baseline x86-64, with 16-byte moves
/// only); fills stay inline up to [`ZERO_INLINE_MAX`] bytes.
///
/// # Panics
/// If `src` is longer than `dst`.
#[inline(always)]
pub(super) fn copy_zero_extend(src: &[u8], dst: &mut [u8]) {
    let (head, rest) = dst.split_at_mut(src.len());
    copy_bytes(src, head);
    zero_bytes(rest);
}

/// Up to this many bytes a copy is inline; past it libc's `memcpy` is faster (see the
/// module documentation).
pub(super) const COPY_INLINE_MAX: usize = 64;

/// Up to this many bytes a fill is inline; past it libc's `memset` is faster (it stores
/// 32 bytes at a time where this crate stores 16).
pub(super) const ZERO_INLINE_MAX: usize = 128;

// The inline copies, fills and zero tests go through `ladder`, which covers at most 256.
const _: () = assert!(COPY_INLINE_MAX <= 256 && ZERO_INLINE_MAX <= 256 && INLINE_MAX <= 256);

/// ORs `K`-byte chunks of `src` into `acc`, eight bytes at a time.
struct Or<'a> {
    src: &'a [u8],
    acc: u64,
}

impl Step for Or<'_> {
    #[inline(always)]
    fn step<const K: usize>(&mut self, at: usize) {
        let chunk: &[u8; K] = self.src[at..at + K].try_into().expect("K bytes");
        self.acc |= match K {
            1 => u64::from(chunk[0]),
            2 => u64::from(u16::from_ne_bytes([chunk[0], chunk[1]])),
            4 => u64::from(u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
            _ => {
                let mut acc = 0;
                for i in 0..K / 8 {
                    acc |= u64::from_ne_bytes(chunk[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
                }
                acc
            }
        };
    }
}

/// Whether any byte is non-zero: inline fixed-size loads up to [`INLINE_MAX`] bytes.
#[inline(always)]
pub(super) fn any_nonzero(bytes: &[u8]) -> bool {
    let n = bytes.len();
    match n {
        // The common case (a libvirt map a word longer than Xen's): two loads, without
        // the jump on the size class.
        8..=16 => {
            let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
            word(0) | word(n - 8) != 0
        }
        _ if n > INLINE_MAX => any_nonzero_large(bytes),
        _ => {
            let mut or = Or { src: bytes, acc: 0 };
            ladder(n, &mut or);
            or.acc != 0
        }
    }
}

/// [`any_nonzero`] past [`INLINE_MAX`] bytes: eight bytes at a time, the last eight
/// overlapping; out of line so that the inline path saves no registers.
#[inline(never)]
fn any_nonzero_large(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let mut acc = word(n - 8);
    for at in (0..n - 8).step_by(8) {
        acc |= word(at);
    }
    acc != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length through every size class, into buffers full of garbage.
    #[test]
    fn moves_cover_every_length() {
        for n in 0..=INLINE_MAX + 9 {
            let src: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
            let mut dst = vec![0xa5; n];
            copy_bytes(&src, &mut dst);
            assert_eq!(dst, src, "copy of {n}");
            zero_bytes(&mut dst);
            assert!(dst.iter().all(|&b| b == 0), "zero of {n}");
            assert!(!any_nonzero(&dst), "any_nonzero of {n} zeros");
            if n > 0 {
                dst[n - 1 - n / 3] = 4;
                assert!(any_nonzero(&dst), "any_nonzero of {n}");
            }
        }
    }
}
