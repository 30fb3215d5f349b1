//! Translation between byte maps (libvirt, Xen) and word bitmaps, on raw slices.
//!
//! A libvirt cpumap and a Xen `xc_cpumap_t`/`xenctl_bitmap` share one layout: CPU `i` is
//! bit `i % 8` of byte `i / 8`. Translating between them is a resize (zero-extend or
//! truncate), a mask of the bits past the host's last CPU, and a check that no set bit is
//! lost. Word bitmaps (`u64`, CPU `i` = bit `i % 64` of word `i / 64`) are the
//! little-endian reading of the same bytes.
//!
//! These functions are the hot path: they allocate nothing on success, check before they
//! write (a failed call leaves the destination untouched), and copy with `memcpy`-class
//! moves. Small maps (up to 32 bytes, i.e. 256 CPUs) use fixed-size overlapping moves
//! instead of calls into libc, whose fixed cost dominates at that size.

use super::{CpuMap, CpuMapError};

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
    cpu < maplen * 8 && cpumap_range(maplen, vcpu).is_some_and(|r| cpumaps.get(r).is_some_and(|m| cpu_used(m, cpu)))
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
#[inline]
pub fn libvirt_to_xen(src: &[u8], dst: &mut [u8], nr_cpus: usize) -> Result<(), CpuMapError> {
    let limit = nr_cpus.min(bits_of(dst.len()));
    if any_set_from(src, limit) {
        return Err(dropped(src, limit, bits_of(src.len()), None));
    }
    // Every set bit is below `limit`, so the copied bytes need no mask.
    copy_zero_extend(&src[..src.len().min(dst.len())], dst);
    Ok(())
}

/// Translates a Xen bitmap into a libvirt cpumap of `dst.len()` bytes.
///
/// Bits of `src` at or past `nr_cpus` are ignored (Xen's buffers are rounded up to whole
/// bytes); the rest of `dst` is zeroed.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] when a CPU below `nr_cpus` is set in `src` but does not fit
/// in `dst`. `dst` is then untouched.
#[inline]
pub fn xen_to_libvirt(src: &[u8], dst: &mut [u8], nr_cpus: usize) -> Result<(), CpuMapError> {
    let meaningful = nr_cpus.min(bits_of(src.len()));
    let cap = bits_of(dst.len());
    if meaningful > cap && any_set_in(src, cap, meaningful) {
        return Err(dropped(src, cap, meaningful, None));
    }
    copy_masked(src, dst, meaningful.min(cap));
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
    let limit = nr_cpus.min(bits_of(xen_len));
    if limit < bits_of(maplen) {
        for (vcpu, map) in src.chunks_exact(maplen).enumerate() {
            if any_set_from(map, limit) {
                return Err(dropped(map, limit, bits_of(maplen), Some(vcpu)));
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
    let meaningful = nr_cpus.min(bits_of(xen_len));
    let cap = bits_of(maplen);
    if meaningful > cap {
        for (vcpu, map) in src.chunks_exact(xen_len).enumerate() {
            if any_set_in(map, cap, meaningful) {
                return Err(dropped(map, cap, meaningful, Some(vcpu)));
            }
        }
    }
    let valid = meaningful.min(cap);
    if maplen == xen_len {
        dst.copy_from_slice(src);
        if valid < bits_of(maplen) {
            let keep = cpu_maplen(valid);
            for map in dst.chunks_exact_mut(maplen) {
                zero_bytes(&mut map[keep..]);
                mask_tail(map, valid);
            }
        }
    } else if maplen > 0 && xen_len > 0 {
        for (s, d) in src.chunks_exact(xen_len).zip(dst.chunks_exact_mut(maplen)) {
            copy_masked(s, d, valid);
        }
    } else {
        dst.fill(0);
    }
    Ok(())
}

/// Reads a byte map as `u64` words (CPU `i` = bit `i % 64` of word `i / 64`), zeroing the
/// words past the end of `src`.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] when `src` sets a CPU at or beyond `dst.len() * 64`;
/// `dst` is then untouched.
#[inline]
pub fn bytes_to_words(src: &[u8], dst: &mut [u64]) -> Result<(), CpuMapError> {
    let cap_bytes = dst.len().saturating_mul(8);
    if any_set_from(src, bits_of(cap_bytes)) {
        return Err(dropped(src, bits_of(cap_bytes), bits_of(src.len()), None));
    }
    let src = &src[..src.len().min(cap_bytes)];
    let chunks = src.chunks_exact(8);
    let tail = chunks.remainder();
    let mut filled = 0;
    for (d, c) in dst.iter_mut().zip(chunks) {
        *d = u64::from_le_bytes(c.try_into().expect("chunks_exact(8) yields 8 bytes"));
        filled += 1;
    }
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        dst[filled] = u64::from_le_bytes(last);
        filled += 1;
    }
    dst[filled..].fill(0);
    Ok(())
}

/// Writes `u64` words as a byte map, zeroing the bytes past the end of `src`.
///
/// # Errors
/// [`CpuMapError::CpusDropped`] when `src` sets a CPU at or beyond `dst.len() * 8`;
/// `dst` is then untouched.
#[inline]
pub fn words_to_bytes(src: &[u64], dst: &mut [u8]) -> Result<(), CpuMapError> {
    let cap = bits_of(dst.len());
    if words_any_set_from(src, cap) {
        let cpus = CpuMap::from_words(src).difference(&CpuMap::all(cap));
        return Err(CpuMapError::CpusDropped { cpus, limit: cap, vcpu: None });
    }
    let written = src.len().saturating_mul(8).min(dst.len());
    let mut chunks = dst.chunks_exact_mut(8);
    let mut words = src.iter();
    // `chunks` may end first: it stands on the left so no word is consumed unpaired.
    for (c, w) in (&mut chunks).zip(&mut words) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        if let Some(w) = words.next() {
            let n = tail.len();
            tail.copy_from_slice(&w.to_le_bytes()[..n]);
        }
    }
    dst[written..].fill(0);
    Ok(())
}

const fn bits_of(bytes: usize) -> usize {
    bytes.saturating_mul(8)
}

/// Whether any bit at or past `bit` is set in `src`.
#[inline]
fn any_set_from(src: &[u8], bit: usize) -> bool {
    any_set_in(src, bit, bits_of(src.len()))
}

/// Whether any bit in `from..to` is set in `src` (`to <= src.len() * 8`).
#[inline(always)]
fn any_set_in(src: &[u8], from: usize, to: usize) -> bool {
    from < to && any_set_in_nonempty(src, from, to)
}

#[inline]
fn any_set_in_nonempty(src: &[u8], from: usize, to: usize) -> bool {
    let (first, last) = (from / 8, (to - 1) / 8);
    if first == last {
        return src[first] & bit_range_mask(from % 8, (to - 1) % 8) != 0;
    }
    let head = src[first] & (0xff << (from % 8));
    let tail = src[last] & bit_range_mask(0, (to - 1) % 8);
    head | tail | or_bytes(&src[first + 1..last]) != 0
}

/// The mask of bits `lo..=hi` of a byte.
#[inline]
fn bit_range_mask(lo: usize, hi: usize) -> u8 {
    (0xffu8 >> (7 - hi)) & (0xffu8 << lo)
}

/// Whether any byte is non-zero. Up to 16 bytes: two overlapping fixed-size loads (no
/// loop); longer: eight bytes at a time, the last eight overlapping.
#[inline]
fn or_bytes(bytes: &[u8]) -> u8 {
    let n = bytes.len();
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let any = match n {
        0 => false,
        1 => bytes[0] != 0,
        2..=3 => u16::from_ne_bytes([bytes[0], bytes[1]]) | u16::from_ne_bytes([bytes[n - 2], bytes[n - 1]]) != 0,
        4..=7 => {
            let half = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            half(0) | half(n - 4) != 0
        }
        8..=16 => word(0) | word(n - 8) != 0,
        _ => {
            let mut acc = word(n - 8);
            let mut at = 0;
            while at + 8 <= n {
                acc |= word(at);
                at += 8;
            }
            acc != 0
        }
    };
    u8::from(any)
}

fn words_any_set_from(words: &[u64], bit: usize) -> bool {
    let first = bit / 64;
    match words.get(first) {
        None => false,
        Some(&w) => {
            let head = if bit % 64 == 0 { w } else { w >> (bit % 64) };
            head != 0 || words[first + 1..].iter().any(|&w| w != 0)
        }
    }
}

/// The error for the set bits of `src` in `from..to`, collected on the (cold) error path.
#[cold]
fn dropped(src: &[u8], from: usize, to: usize, vcpu: Option<usize>) -> CpuMapError {
    let to = to.min(bits_of(src.len()));
    let cpus = (from..to).filter(|&cpu| cpu_used(src, cpu)).collect();
    CpuMapError::CpusDropped { cpus, limit: from, vcpu }
}

/// Copies the first `bits` bits of `src` into `dst` and zeroes everything after them.
/// `bits <= min(src.len(), dst.len()) * 8`.
#[inline]
fn copy_masked(src: &[u8], dst: &mut [u8], bits: usize) {
    let n = cpu_maplen(bits);
    copy_zero_extend(&src[..n], dst);
    mask_tail(dst, bits);
}

/// Clears the bits at and past `bits` in the byte that holds bit `bits`, if it is partial.
#[inline]
fn mask_tail(map: &mut [u8], bits: usize) {
    if bits % 8 != 0 {
        map[bits / 8] &= 0xff >> (8 - bits % 8);
    }
}

/// Copies `src` to the front of `dst` (`src.len() <= dst.len()`) and zeroes the rest.
#[inline]
fn copy_zero_extend(src: &[u8], dst: &mut [u8]) {
    let (head, rest) = dst.split_at_mut(src.len());
    copy_bytes(src, head);
    zero_bytes(rest);
}

/// Up to this many bytes, copies and fills are done inline with fixed-size moves: a call
/// into libc's `memcpy`/`memset` costs more than the work at these sizes.
const INLINE_MAX: usize = 256;

/// `dst.copy_from_slice(src)` for slices of equal length, without a libc call when small.
#[inline(always)]
fn copy_bytes(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    if n <= 32 {
        copy_small(src, dst);
    } else if n <= INLINE_MAX {
        let mut at = 0;
        while at + 32 < n {
            mv::<32>(src, dst, at);
            at += 32;
        }
        mv::<32>(src, dst, n - 32);
    } else {
        dst.copy_from_slice(src);
    }
}

/// `dst.fill(0)`, without a libc call when small.
#[inline(always)]
fn zero_bytes(dst: &mut [u8]) {
    let n = dst.len();
    if n <= 32 {
        zero_small(dst);
    } else if n <= INLINE_MAX {
        let mut at = 0;
        while at + 32 < n {
            zero::<32>(dst, at);
            at += 32;
        }
        zero::<32>(dst, n - 32);
    } else {
        dst.fill(0);
    }
}

/// Moves `K` bytes at `at` with one fixed-size load and store.
#[inline(always)]
fn mv<const K: usize>(src: &[u8], dst: &mut [u8], at: usize) {
    let s: &[u8; K] = src[at..at + K].try_into().expect("K bytes");
    let d: &mut [u8; K] = (&mut dst[at..at + K]).try_into().expect("K bytes");
    *d = *s;
}

/// Stores `K` zero bytes at `at`.
#[inline(always)]
fn zero<const K: usize>(dst: &mut [u8], at: usize) {
    let d: &mut [u8; K] = (&mut dst[at..at + K]).try_into().expect("K bytes");
    *d = [0; K];
}

/// The size class of a length `1..=32`: moves of `1 << class` bytes cover it with two
/// overlapping moves (class 4 covers 16 to 32 bytes).
#[inline(always)]
fn small_class(n: usize) -> u32 {
    n.ilog2().min(4)
}

/// A copy of up to 32 bytes as two overlapping fixed-size moves, so that no call into
/// libc's `memcpy` is made for the small maps that dominate real hosts.
#[inline(always)]
fn copy_small(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    if n == 0 {
        return;
    }
    match small_class(n) {
        0 => dst[0] = src[0],
        1 => {
            mv::<2>(src, dst, 0);
            mv::<2>(src, dst, n - 2);
        }
        2 => {
            mv::<4>(src, dst, 0);
            mv::<4>(src, dst, n - 4);
        }
        3 => {
            mv::<8>(src, dst, 0);
            mv::<8>(src, dst, n - 8);
        }
        _ => {
            mv::<16>(src, dst, 0);
            mv::<16>(src, dst, n - 16);
        }
    }
}

/// Zeroes up to 32 bytes with two overlapping fixed-size stores.
#[inline(always)]
fn zero_small(dst: &mut [u8]) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    match small_class(n) {
        0 => dst[0] = 0,
        1 => {
            zero::<2>(dst, 0);
            zero::<2>(dst, n - 2);
        }
        2 => {
            zero::<4>(dst, 0);
            zero::<4>(dst, n - 4);
        }
        3 => {
            zero::<8>(dst, 0);
            zero::<8>(dst, n - 8);
        }
        _ => {
            zero::<16>(dst, 0);
            zero::<16>(dst, n - 16);
        }
    }
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
    fn bit_range_masks() {
        assert_eq!(bit_range_mask(0, 7), 0xff);
        assert_eq!(bit_range_mask(3, 3), 0x08);
        assert_eq!(bit_range_mask(1, 4), 0b0001_1110);
    }

    #[test]
    fn any_set_in_spans_bytes() {
        let map = [0u8, 0, 0b0000_0100, 0, 0, 0, 0, 0, 0, 0, 0x80];
        assert!(any_set_in(&map, 18, 19));
        assert!(!any_set_in(&map, 19, 87));
        assert!(any_set_in(&map, 19, 88));
        assert!(any_set_in(&map, 0, 88));
        assert!(!any_set_in(&map, 40, 40));
    }

    #[test]
    fn dropped_names_cpus_and_vcpu() {
        let e = libvirt_maps_to_xen(&[0x01, 0x00, 0x00, 0x80], 2, 2, &mut [0; 2], 1, 8).unwrap_err();
        assert_eq!(e.to_string(), "CPU 15 would be dropped: only CPUs below 8 fit (map of vCPU 1)");
    }
}
