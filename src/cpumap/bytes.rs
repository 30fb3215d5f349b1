//! Translation between byte maps (libvirt, Xen) and word bitmaps, on raw slices.
//!
//! A libvirt cpumap and a Xen `xc_cpumap_t`/`xenctl_bitmap` share one layout: CPU `i` is
//! bit `i % 8` of byte `i / 8`. Translating between them is a resize (zero-extend or
//! truncate), a mask of the bits past the host's last CPU, and a check that no set bit is
//! lost. Word bitmaps (`u64`, CPU `i` = bit `i % 64` of word `i / 64`) are the
//! little-endian reading of the same bytes.
//!
//! These functions are the hot path: they allocate nothing on success, check before they
//! write (a failed call leaves the destination untouched), and copy at `memcpy` speed:
//! maps of up to 32 bytes (256 CPUs) in registers with no call (`small.rs`), copies of up
//! to 64 bytes and fills of up to 128 bytes inline, longer ones through libc
//! (`moves.rs`). Each path takes as few tests as it can: at 1024 CPUs a `memcpy` is about
//! ten cycles, and every test on the way costs a measurable share of it. The drop checks
//! look at the source bytes that could hold a lost CPU, which usually takes one
//! comparison; their rare shapes are out of line.
//! Word bitmaps are translated as bytes: their memory, viewed as bytes (`zerocopy`), is
//! the byte map on a little-endian machine, so a word translation is one `memcpy` too.

use zerocopy::IntoBytes;

use super::moves::{any_nonzero, copy_bytes, copy_zero_extend, zero_bytes};
use super::small::{self, Bits256};
use super::CpuMapError;

/// Bytes needed for a map of `ncpus` CPUs: libvirt's `VIR_CPU_MAPLEN`.
///
/// ```
/// assert_eq!(xenvcpu::cpumap::cpu_maplen(0), 0);
/// assert_eq!(xenvcpu::cpumap::cpu_maplen(8), 1);
/// assert_eq!(xenvcpu::cpumap::cpu_maplen(9), 2);
/// ```
pub const fn cpu_maplen(ncpus: usize) -> usize {
    ncpus.div_ceil(8)
}

/// Marks `cpu` usable in `map` (libvirt's `VIR_USE_CPU`).
///
/// # Panics
/// If `cpu` lies beyond the map (`cpu >= map.len() * 8`), like slice indexing; nothing
/// is dropped silently.
pub fn use_cpu(map: &mut [u8], cpu: usize) {
    map[cpu / 8] |= 1 << (cpu % 8);
}

/// Marks `cpu` unusable in `map` (libvirt's `VIR_UNUSE_CPU`).
///
/// # Panics
/// If `cpu` lies beyond the map (`cpu >= map.len() * 8`).
pub fn unuse_cpu(map: &mut [u8], cpu: usize) {
    map[cpu / 8] &= !(1 << (cpu % 8));
}

/// Whether `cpu` is set in `map` (libvirt's `VIR_CPU_USED`); `false` beyond the map.
pub fn cpu_used(map: &[u8], cpu: usize) -> bool {
    map.get(cpu / 8).is_some_and(|b| b & (1 << (cpu % 8)) != 0)
}

/// Whether `cpu` is set in the map of `vcpu` inside a `cpumaps` array of `maplen`-byte
/// maps (libvirt's `VIR_CPU_USABLE`); `false` when either lies beyond the array.
pub fn cpu_usable(cpumaps: &[u8], maplen: usize, vcpu: usize, cpu: usize) -> bool {
    // `cpu / 8 < maplen`, not `cpu < maplen * 8`: the product overflows for a huge `maplen`.
    cpu / 8 < maplen && cpumap_range(maplen, vcpu).is_some_and(|r| cpumaps.get(r).is_some_and(|m| cpu_used(m, cpu)))
}

fn cpumap_range(maplen: usize, vcpu: usize) -> Option<std::ops::Range<usize>> {
    let start = vcpu.checked_mul(maplen)?;
    Some(start..start.checked_add(maplen)?)
}

/// The map of `vcpu` inside a `cpumaps` array (libvirt's `VIR_GET_CPUMAP`).
///
/// # Panics
/// If the array is shorter than `(vcpu + 1) * maplen` bytes.
pub fn get_cpumap(cpumaps: &[u8], maplen: usize, vcpu: usize) -> &[u8] {
    let range = cpumap_range(maplen, vcpu).expect("cpumap offset overflows usize");
    &cpumaps[range]
}

/// The map of `vcpu` inside a `cpumaps` array, mutably.
///
/// # Panics
/// If the array is shorter than `(vcpu + 1) * maplen` bytes.
pub fn get_cpumap_mut(cpumaps: &mut [u8], maplen: usize, vcpu: usize) -> &mut [u8] {
    let range = cpumap_range(maplen, vcpu).expect("cpumap offset overflows usize");
    &mut cpumaps[range]
}

/// Copies the map of `vcpu` out of a `cpumaps` array into `map` (libvirt's
/// `VIR_COPY_CPUMAP`).
///
/// # Panics
/// If `map` is not `maplen` bytes or the array is too short.
pub fn copy_cpumap(cpumaps: &[u8], maplen: usize, vcpu: usize, map: &mut [u8]) {
    map.copy_from_slice(get_cpumap(cpumaps, maplen, vcpu));
}

/// Translates a libvirt cpumap into a Xen-sized bitmap.
///
/// `dst` is the Xen buffer (`xc_get_cpumap_size()` bytes: `(max_cpu_id + 1 + 7) / 8`) and
/// `nr_cpus` the host's CPU count (`max_cpu_id + 1`). `src` is zero-extended or truncated
/// into `dst`; bits past `nr_cpus` are left clear.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] naming the CPUs when `src` sets a CPU at or beyond
/// `min(nr_cpus, dst.len() * 8)`: such a CPU would be dropped, and xenvcpu refuses to
/// drop CPUs silently. `dst` is then untouched.
#[inline(always)]
pub fn libvirt_to_xen(src: &[u8], dst: &mut [u8], nr_cpus: usize) -> Result<(), CpuMapError> {
    let limit = Limit::new(nr_cpus, dst.len());
    if limit.at < src.len() {
        // `src` reaches the limit (a truncation, or a host smaller than the map): check
        // that it sets nothing at or past it, then copy what fits (every set bit lies
        // below the limit, so the copy needs no mask).
        if limit.exceeded_by(src) {
            return refuse(src, limit.bit(), bits_of(src.len()), None);
        }
        if src.len() >= dst.len() {
            // The usual truncation (or equal lengths): the front of `src`, as it is.
            copy_bytes(&src[..dst.len()], dst);
        } else {
            copy_resize(src, dst);
        }
    } else {
        // All of `src` lies below the limit (usually: the limit is the end of `dst`), so
        // there is nothing to check; `src` is no longer than `dst`.
        copy_resize(src, dst);
    }
    Ok(())
}

/// Copies `src` (`src.len() <= dst.len()`) to the front of `dst` and zeroes the rest.
#[inline(always)]
fn copy_resize(src: &[u8], dst: &mut [u8]) {
    if src.len() == dst.len() {
        // The usual equal lengths: the copy alone.
        copy_bytes(src, dst);
    } else if dst.len() > LIBC_MIN {
        // A long map: both parts go to libc, with no further tests on their sizes.
        dst[..src.len()].copy_from_slice(src);
        dst[src.len()..].fill(0);
    } else if dst.len() > small::MAX {
        copy_zero_extend(src, dst);
    } else {
        Bits256::load(src).store(dst);
    }
}

/// Past this many bytes (2048 CPUs), a zero-extension calls libc for both of its parts
/// without looking at their sizes: at 4096 CPUs each size test on the way to the two calls
/// measured about 0.05x of a memcpy. A short part (a few bytes copied into a long map)
/// then costs a libc call that an inline move would have saved.
const LIBC_MIN: usize = 256;

/// Translates a Xen bitmap into a libvirt cpumap of `dst.len()` bytes.
///
/// Bits of `src` at or past `nr_cpus` are ignored (Xen's buffers are rounded up to whole
/// bytes); the rest of `dst` is zeroed.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] when a CPU below `nr_cpus` is set in `src` but does not fit
/// in `dst`. `dst` is then untouched.
#[inline(always)]
pub fn xen_to_libvirt(src: &[u8], dst: &mut [u8], nr_cpus: usize) -> Result<(), CpuMapError> {
    let meaningful = Limit::new(nr_cpus, src.len());
    if meaningful.overflows(src, dst.len()) {
        return refuse(src, bits_of(dst.len()), meaningful.bit(), None);
    }
    if src.len() <= small::MAX && dst.len() <= small::MAX {
        let n = src.len().min(dst.len());
        Bits256::load(&src[..n]).store(dst);
        // Clear what lies past `nr_cpus` (usually some bits of the last byte).
        if meaningful.at < n {
            dst[meaningful.at] &= meaningful.below();
            zero_bytes(&mut dst[meaningful.at + 1..n]);
        }
    } else {
        meaningful.copy_into(src, dst);
    }
    Ok(())
}

/// Translates an array of `nvcpus` libvirt maps of `maplen` bytes each into an array of
/// Xen maps of `xen_len` bytes each (vCPU `v` at `v * len`), as [`libvirt_to_xen`] does
/// for one map. When `maplen == xen_len` the array is moved with one bulk copy.
///
/// # Errors
/// [`CpuMapError::BufferTooSmall`] when `src` or `dst` is shorter than its array,
/// [`CpuMapError::SizeOverflow`] when a size overflows, and [`CpuMapError::CpusDropped`]
/// (naming the vCPU) when a map sets a CPU that would be dropped. All maps are checked
/// before anything is written, so `dst` is untouched on error.
#[inline]
pub fn libvirt_maps_to_xen(
    src: &[u8],
    maplen: usize,
    nvcpus: usize,
    dst: &mut [u8],
    xen_len: usize,
    nr_cpus: usize,
) -> Result<(), CpuMapError> {
    let (src, dst) = array_buffers(src, maplen, dst, xen_len, nvcpus)?;
    let limit = Limit::new(nr_cpus, xen_len);
    if limit.at < maplen {
        for (vcpu, map) in src.chunks_exact(maplen).enumerate() {
            if limit.exceeded_by(map) {
                return refuse(map, limit.bit(), bits_of(maplen), Some(vcpu));
            }
        }
    }
    if maplen == xen_len {
        dst.copy_from_slice(src);
    } else if maplen > 0 && xen_len > 0 {
        let n = maplen.min(xen_len);
        for (s, d) in src.chunks_exact(maplen).zip(dst.chunks_exact_mut(xen_len)) {
            copy_zero_extend(&s[..n], d);
        }
    } else {
        dst.fill(0);
    }
    Ok(())
}

/// Translates an array of `nvcpus` Xen maps of `xen_len` bytes each into an array of
/// libvirt maps of `maplen` bytes each, as [`xen_to_libvirt`] does for one map. When the
/// lengths match, the array is moved with one bulk copy and each map's last byte fixed.
///
/// # Errors
/// As [`libvirt_maps_to_xen`]; `dst` is untouched on error.
#[inline]
pub fn xen_maps_to_libvirt(
    src: &[u8],
    xen_len: usize,
    nvcpus: usize,
    dst: &mut [u8],
    maplen: usize,
    nr_cpus: usize,
) -> Result<(), CpuMapError> {
    let (src, dst) = array_buffers(src, xen_len, dst, maplen, nvcpus)?;
    let meaningful = Limit::new(nr_cpus, xen_len);
    if meaningful.passes(maplen) {
        for (vcpu, map) in src.chunks_exact(xen_len).enumerate() {
            if meaningful.overflows(map, maplen) {
                return refuse(map, bits_of(maplen), meaningful.bit(), Some(vcpu));
            }
        }
    }
    if maplen == xen_len {
        dst.copy_from_slice(src);
        if meaningful.at < maplen {
            let (at, below) = (meaningful.at, meaningful.below());
            for map in dst.chunks_exact_mut(maplen) {
                map[at] &= below;
                zero_bytes(&mut map[at + 1..]);
            }
        }
    } else if maplen > 0 && xen_len > 0 {
        for (s, d) in src.chunks_exact(xen_len).zip(dst.chunks_exact_mut(maplen)) {
            meaningful.copy_into(s, d);
        }
    } else {
        dst.fill(0);
    }
    Ok(())
}

/// Reads a byte map as `u64` words (CPU `i` = bit `i % 64` of word `i / 64`), zeroing the
/// words past the end of `src`.
///
/// On a little-endian machine the words' memory holds exactly the byte map, so this is
/// [`libvirt_to_xen`] into the words viewed as bytes, with no host limit.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] when `src` sets a CPU at or beyond `dst.len() * 64`;
/// `dst` is then untouched.
#[inline(always)]
pub fn bytes_to_words(src: &[u8], dst: &mut [u64]) -> Result<(), CpuMapError> {
    libvirt_to_xen(src, dst.as_mut_bytes(), usize::MAX)
}

/// Writes `u64` words as a byte map, zeroing the bytes past the end of `src`.
///
/// This is [`libvirt_to_xen`] from the words viewed as bytes (little-endian), with no
/// host limit.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] when `src` sets a CPU at or beyond `dst.len() * 8`;
/// `dst` is then untouched.
#[inline(always)]
pub fn words_to_bytes(src: &[u64], dst: &mut [u8]) -> Result<(), CpuMapError> {
    libvirt_to_xen(src.as_bytes(), dst, usize::MAX)
}

const fn bits_of(bytes: usize) -> usize {
    bytes.saturating_mul(8)
}

/// Where a limit of `min(bits, len * 8)` bits falls in a byte map of `len` bytes: the bytes
/// before `at` lie wholly below it, and so do the low `rem` bits of byte `at` (`rem` is zero
/// when the limit falls on a byte boundary, and always when `at == len`).
#[derive(Clone, Copy)]
struct Limit {
    at: usize,
    rem: u32,
}

impl Limit {
    #[inline(always)]
    fn new(bits: usize, len: usize) -> Self {
        let at = bits / 8;
        if at >= len {
            Limit { at: len, rem: 0 }
        } else {
            Limit { at, rem: (bits % 8) as u32 }
        }
    }

    /// The mask of the bits of byte `at` below the limit (computed where it is used, so
    /// that the common paths that never look at byte `at` do not pay for it).
    #[inline(always)]
    fn below(self) -> u8 {
        (1u8 << self.rem).wrapping_sub(1)
    }

    /// The limit in bits (for error messages).
    fn bit(self) -> usize {
        bits_of(self.at) + self.rem as usize
    }

    /// Whether `map` sets a bit at or past the limit.
    #[inline(always)]
    fn exceeded_by(self, map: &[u8]) -> bool {
        let (len, at) = (map.len(), self.at);
        if at >= len {
            return false;
        }
        // The usual truncation, a map a word or two longer than the limit: byte `at` and
        // two words covering the rest (one word when `tail == 9`), tested in one branch.
        let over = &map[at..];
        let tail = over.len();
        let word = |from: usize| u64::from_le_bytes(over[from..from + 8].try_into().expect("8 bytes"));
        if (9..=17).contains(&tail) {
            return u64::from(over[0] >> self.rem) | word(1) | word(tail - 8) != 0;
        }
        if tail <= 8 {
            // A limit inside the last word (a map sized to a host whose CPU count is not a
            // multiple of 8; the words of `words_to_bytes` into a shorter map): it is bit
            // `8 * (8 - tail) + rem` (at most 63) of that word.
            if len >= 8 {
                let last = u64::from_le_bytes(map[len - 8..].try_into().expect("8 bytes"));
                return last >> (8 * (8 - tail) as u32 + self.rem) != 0;
            }
            // A map of less than a word sized to its host: the limit is in its last byte.
            if tail == 1 {
                return over[0] >> self.rem != 0;
            }
        }
        self.exceeded_by_other(over)
    }

    /// [`Limit::exceeded_by`] for the other shapes (`over` is the map from byte `at`),
    /// out of line so that the check inlined into every caller stays short.
    #[inline(never)]
    fn exceeded_by_other(self, over: &[u8]) -> bool {
        over[0] >> self.rem != 0 || any_nonzero(&over[1..])
    }

    /// Whether the limit lies past the first `len` bytes.
    #[inline(always)]
    fn passes(self, len: usize) -> bool {
        len < self.at || (len == self.at && self.rem != 0)
    }

    /// Whether `map` sets a bit below the limit that lies past the first `len` bytes.
    #[inline(always)]
    fn overflows(self, map: &[u8], len: usize) -> bool {
        self.passes(len) && (self.partial(map) != 0 || any_nonzero(&map[len..self.at]))
    }

    /// The bits of byte `at` below the limit (zero when there is no such byte).
    #[inline(always)]
    fn partial(self, map: &[u8]) -> u8 {
        map.get(self.at).map_or(0, |b| b & self.below())
    }

    /// Copies the bits of `map` below the limit into `dst`, zeroing the rest of `dst`;
    /// bits that do not fit are not copied (the caller checked [`Limit::overflows`]).
    #[inline(always)]
    fn copy_into(self, map: &[u8], dst: &mut [u8]) {
        let n = self.at.min(dst.len());
        copy_zero_extend(&map[..n], dst);
        if n < dst.len() {
            dst[n] = self.partial(map);
        }
    }
}

/// The error for the set bits of `src` in `from..to`, collected on the (cold) error path.
/// It returns the whole `Result` so that callers end in a tail call and their fast path
/// keeps no registers for it.
#[cold]
#[inline(never)]
fn refuse(src: &[u8], from: usize, to: usize, vcpu: Option<usize>) -> Result<(), CpuMapError> {
    let to = to.min(bits_of(src.len()));
    let cpus = (from..to).filter(|&cpu| cpu_used(src, cpu)).collect();
    Err(CpuMapError::CpusDropped { cpus, limit: from, vcpu })
}

fn array_buffers<'s, 'd>(
    src: &'s [u8],
    src_len: usize,
    dst: &'d mut [u8],
    dst_len: usize,
    count: usize,
) -> Result<(&'s [u8], &'d mut [u8]), CpuMapError> {
    let need = |len: usize, what: &'static str, got: usize| {
        let needed = len.checked_mul(count).ok_or(CpuMapError::SizeOverflow { len, count })?;
        if got < needed {
            return Err(CpuMapError::BufferTooSmall { what, needed, got });
        }
        Ok(needed)
    };
    let src_need = need(src_len, "source", src.len())?;
    let dst_need = need(dst_len, "destination", dst.len())?;
    Ok((&src[..src_need], &mut dst[..dst_need]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_split_bytes() {
        let l = Limit::new(11, 4);
        assert_eq!((l.at, l.below(), l.bit()), (1, 0b0000_0111, 11));
        let l = Limit::new(16, 4);
        assert_eq!((l.at, l.below(), l.bit()), (2, 0, 16));
        let l = Limit::new(100, 4);
        assert_eq!((l.at, l.below(), l.bit()), (4, 0, 32));
        assert!(Limit::new(11, 4).exceeded_by(&[0, 0b1000, 0]));
        assert!(!Limit::new(11, 4).exceeded_by(&[0xff, 0b0111, 0]));
        assert!(Limit::new(11, 4).exceeded_by(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]));
    }

    /// Every single set bit around every limit, for maps up to three words past it: the
    /// check sees exactly the bits at or past the limit.
    #[test]
    fn exceeded_by_sees_every_bit_past_the_limit() {
        for len in 0..40 {
            for bits in 0..=len * 8 + 2 {
                let limit = Limit::new(bits, len);
                let mut map = vec![0u8; len];
                assert!(!limit.exceeded_by(&map), "empty map of {len}, limit {bits}");
                for bit in 0..len * 8 {
                    map[bit / 8] = 1 << (bit % 8);
                    assert_eq!(limit.exceeded_by(&map), bit >= bits, "bit {bit} of {len} bytes, limit {bits}");
                    map[bit / 8] = 0;
                }
            }
        }
    }

    #[test]
    fn dropped_names_cpus_and_vcpu() {
        let e = libvirt_maps_to_xen(&[0x01, 0x00, 0x00, 0x80], 2, 2, &mut [0; 2], 1, 8).unwrap_err();
        assert_eq!(e.to_string(), "CPU 15 would be dropped: only CPUs below 8 fit (map of vCPU 1)");
    }
}
