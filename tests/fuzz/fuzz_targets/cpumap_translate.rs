//! Fuzzes every translation of `xenvcpu::cpumap` between byte maps (libvirt, Xen), word
//! maps and `CpuMap`, each against a bit-by-bit reference written here.
//!
//! The reference semantics (from the functions' documentation): CPU `i` is bit `i % 8` of
//! byte `i / 8` (bit `i % 64` of word `i / 64`); the destination is the source
//! zero-extended or truncated; a CPU set in the source at or past the limit (the host's
//! CPU count, or the destination's capacity) is `CpusDropped` naming exactly those CPUs and
//! the limit, and the destination is then untouched. Lengths, limits, contents and the
//! destination's previous contents all come from the input.
#![no_main]

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use xenvcpu::cpumap::{self, CpuMap, CpuMapError};

fn bit(map: &[u8], i: usize) -> bool {
    map.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
}

fn set_bit(map: &mut [u8], i: usize, on: bool) {
    if on {
        map[i / 8] |= 1 << (i % 8);
    } else {
        map[i / 8] &= !(1 << (i % 8));
    }
}

fn words_as_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn dropped(cpus: impl Iterator<Item = usize>, limit: usize, vcpu: Option<usize>) -> CpuMapError {
    CpuMapError::CpusDropped { cpus: cpus.collect(), limit, vcpu }
}

/// The reference of `libvirt_to_xen` (and of every translation built on it): the map
/// `src` in `dst_len` bytes, refusing set CPUs at or past `min(nr_cpus, dst_len * 8)`.
fn ref_to_xen(src: &[u8], dst_len: usize, nr_cpus: usize, vcpu: Option<usize>) -> Result<Vec<u8>, CpuMapError> {
    let limit = nr_cpus.min(dst_len * 8);
    let lost: Vec<usize> = (limit..src.len() * 8).filter(|&i| bit(src, i)).collect();
    if !lost.is_empty() {
        return Err(dropped(lost.into_iter(), limit, vcpu));
    }
    let mut out = vec![0u8; dst_len];
    for i in 0..dst_len * 8 {
        set_bit(&mut out, i, bit(src, i));
    }
    Ok(out)
}

/// The reference of `xen_to_libvirt`: the bits of `src` below `nr_cpus` in `dst_len`
/// bytes, refusing those of them that do not fit.
fn ref_to_libvirt(src: &[u8], dst_len: usize, nr_cpus: usize, vcpu: Option<usize>) -> Result<Vec<u8>, CpuMapError> {
    let meaningful = nr_cpus.min(src.len() * 8);
    let lost: Vec<usize> = (dst_len * 8..meaningful).filter(|&i| bit(src, i)).collect();
    if !lost.is_empty() {
        return Err(dropped(lost.into_iter(), dst_len * 8, vcpu));
    }
    let mut out = vec![0u8; dst_len];
    for i in 0..dst_len * 8 {
        set_bit(&mut out, i, i < meaningful && bit(src, i));
    }
    Ok(out)
}

type OneRef = fn(&[u8], usize, usize, Option<usize>) -> Result<Vec<u8>, CpuMapError>;

/// The reference of the array forms: sizes checked (source, then destination), every map
/// translated by `one` (the first failing vCPU is the error), the bytes past the array
/// left as they were.
fn ref_array(
    one: OneRef,
    src: &[u8],
    src_len: usize,
    nvcpus: usize,
    dst: &[u8],
    dst_len: usize,
    nr_cpus: usize,
) -> Result<Vec<u8>, CpuMapError> {
    let need = |len: usize, what: &'static str, got: usize| {
        let needed = len.checked_mul(nvcpus).ok_or(CpuMapError::SizeOverflow { len, count: nvcpus })?;
        if got < needed {
            return Err(CpuMapError::BufferTooSmall { what, needed, got });
        }
        Ok(())
    };
    need(src_len, "source", src.len())?;
    need(dst_len, "destination", dst.len())?;
    if src_len == 0 && dst_len == 0 {
        // Any number of empty maps (even usize::MAX of them): nothing to translate.
        return Ok(dst.to_vec());
    }
    let mut out = dst.to_vec();
    for v in 0..nvcpus {
        let map = one(&src[v * src_len..(v + 1) * src_len], dst_len, nr_cpus, Some(v))?;
        out[v * dst_len..(v + 1) * dst_len].copy_from_slice(&map);
    }
    Ok(out)
}

/// A length, mostly small, sometimes around the implementation's size classes (32 bytes
/// in registers, 64 inline, 256 to libc).
fn length(u: &mut Unstructured<'_>) -> ArbResult<usize> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => u.int_in_range(0..=300)?,
        1 => u.int_in_range(24..=72)?,
        2 => u.int_in_range(250..=270)?,
        _ => u.int_in_range(0..=20)?,
    })
}

/// A byte map of `len` bytes: from the input, empty, full, or a few chosen bits.
fn contents(u: &mut Unstructured<'_>, len: usize) -> ArbResult<Vec<u8>> {
    let mut map = vec![0u8; len];
    match u.int_in_range(0..=3u8)? {
        0 => {
            let n = len.min(u.len());
            map[..n].copy_from_slice(u.bytes(n)?);
        }
        1 => map.fill(u.arbitrary()?),
        _ => {
            if len > 0 {
                for _ in 0..u.int_in_range(0..=3u8)? {
                    let i = u.int_in_range(0..=len * 8 - 1)?;
                    set_bit(&mut map, i, true);
                }
            }
        }
    }
    Ok(map)
}

/// A host CPU count: near the maps' sizes, or anything.
fn nr_cpus(u: &mut Unstructured<'_>, near: usize) -> ArbResult<usize> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => usize::MAX,
        1 => u.arbitrary()?,
        _ => u.int_in_range(0..=near * 8 + 16)?,
    })
}

/// Runs `f` on a copy of `dst` and checks the result and the copy against `expected`
/// (on error, the copy must equal `dst`).
fn compare(dst: &[u8], expected: Result<Vec<u8>, CpuMapError>, f: impl FnOnce(&mut [u8]) -> Result<(), CpuMapError>) {
    let mut got = dst.to_vec();
    let result = f(&mut got);
    match expected {
        Ok(out) => {
            assert_eq!(result, Ok(()));
            assert_eq!(got, out);
        }
        Err(e) => {
            assert_eq!(result, Err(e));
            assert_eq!(got, dst, "destination changed on error");
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let op = u.int_in_range(0..=8u8)?;
    let (src_len, dst_len) = (length(u)?, length(u)?);
    let src = contents(u, src_len)?;
    let dst = contents(u, dst_len)?;
    let nr = nr_cpus(u, src_len.max(dst_len))?;
    match op {
        0 => compare(&dst, ref_to_xen(&src, dst_len, nr, None), |d| cpumap::libvirt_to_xen(&src, d, nr)),
        1 => compare(&dst, ref_to_libvirt(&src, dst_len, nr, None), |d| cpumap::xen_to_libvirt(&src, d, nr)),
        2 | 3 => {
            // Arrays: a small map length and count, so that several maps fit in the buffers.
            let maplen = u.int_in_range(0..=40)?;
            let other = if u.ratio(1, 3)? { maplen } else { u.int_in_range(0..=40)? };
            let nvcpus = if u.ratio(1, 30)? { usize::MAX } else { u.int_in_range(0..=8)? };
            let nr = nr_cpus(u, maplen.max(other))?;
            if op == 2 {
                let expected = ref_array(ref_to_xen, &src, maplen, nvcpus, &dst, other, nr);
                compare(&dst, expected, |d| cpumap::libvirt_maps_to_xen(&src, maplen, nvcpus, d, other, nr));
            } else {
                let expected = ref_array(ref_to_libvirt, &src, maplen, nvcpus, &dst, other, nr);
                compare(&dst, expected, |d| cpumap::xen_maps_to_libvirt(&src, maplen, nvcpus, d, other, nr));
            }
        }
        4 => {
            // Bytes to words: the words' bytes are the reference's output, no host limit.
            let words: Vec<u64> =
                dst.chunks(8).map(|c| c.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b))).collect();
            let before = words_as_bytes(&words);
            let expected = ref_to_xen(&src, before.len(), usize::MAX, None);
            let mut got = words.clone();
            let result = cpumap::bytes_to_words(&src, &mut got);
            match expected {
                Ok(out) => {
                    assert_eq!(result, Ok(()));
                    assert_eq!(words_as_bytes(&got), out);
                }
                Err(e) => {
                    assert_eq!(result, Err(e));
                    assert_eq!(got, words, "destination changed on error");
                }
            }
        }
        5 => {
            let words: Vec<u64> =
                src.chunks(8).map(|c| c.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b))).collect();
            let expected = ref_to_xen(&words_as_bytes(&words), dst_len, usize::MAX, None);
            compare(&dst, expected, |d| cpumap::words_to_bytes(&words, d));
        }
        6 => {
            // CpuMap from bytes (fresh, and reusing a map that held other CPUs).
            let map = CpuMap::from_libvirt_bytes(&src);
            let cpus: Vec<usize> = (0..src_len * 8).filter(|&i| bit(&src, i)).collect();
            assert_eq!(map.iter().collect::<Vec<_>>(), cpus);
            assert_eq!(map.count(), cpus.len());
            for i in 0..src_len * 8 + 70 {
                assert_eq!(map.contains(i), bit(&src, i), "CPU {i}");
            }
            let mut reused = CpuMap::from_libvirt_bytes(&dst);
            reused.assign_libvirt_bytes(&src);
            assert_eq!(reused, map);
            assert_eq!(reused.iter().collect::<Vec<_>>(), cpus);
            // And back, into the buffer and into a fresh vector.
            let expected = ref_to_xen(&src, dst_len, usize::MAX, None);
            compare(&dst, expected.clone(), |d| map.write_libvirt_bytes(d));
            assert_eq!(map.to_libvirt_bytes(dst_len), expected);
            let words = map.as_words();
            assert_eq!(CpuMap::from_words(words), map);
            assert_eq!(words_as_bytes(words)[..src_len.min(words.len() * 8)], src[..src_len.min(words.len() * 8)]);
        }
        7 => {
            // The libvirt macros, with any (even overflowing) numbers.
            let maplen: usize = if u.ratio(1, 10)? { u.arbitrary()? } else { u.int_in_range(0..=12)? };
            let vcpu: usize = if u.ratio(1, 10)? { u.arbitrary()? } else { u.int_in_range(0..=12)? };
            let cpu: usize = if u.ratio(1, 10)? { u.arbitrary()? } else { u.int_in_range(0..=110)? };
            assert_eq!(cpumap::cpu_used(&src, cpu), bit(&src, cpu));
            let inside = vcpu
                .checked_mul(maplen)
                .and_then(|start| Some((start, start.checked_add(maplen)?)))
                .filter(|&(_, end)| end <= src.len());
            let usable = cpu < maplen.saturating_mul(8) && inside.is_some_and(|(start, _)| bit(&src, start * 8 + cpu));
            assert_eq!(cpumap::cpu_usable(&src, maplen, vcpu, cpu), usable);
            if let Some((start, end)) = inside {
                assert_eq!(cpumap::get_cpumap(&src, maplen, vcpu), &src[start..end]);
                let mut copy = vec![0u8; maplen];
                cpumap::copy_cpumap(&src, maplen, vcpu, &mut copy);
                assert_eq!(copy, &src[start..end]);
            }
            assert_eq!(cpumap::cpu_maplen(cpu), cpu.div_ceil(8));
            if cpu < dst_len * 8 {
                let mut d = dst.clone();
                cpumap::use_cpu(&mut d, cpu);
                assert!(bit(&d, cpu));
                cpumap::unuse_cpu(&mut d, cpu);
                assert!(!bit(&d, cpu));
                set_bit(&mut d, cpu, bit(&dst, cpu));
                assert_eq!(d, dst, "other CPUs changed");
            }
        }
        _ => {
            // CpuMap::all and the set operations against the bytes.
            let n = u.int_in_range(0..=src_len * 8 + 70)?;
            let all = CpuMap::all(n);
            assert_eq!(all.count(), n);
            assert_eq!(all.last(), n.checked_sub(1));
            let (a, b) = (CpuMap::from_libvirt_bytes(&src), CpuMap::from_libvirt_bytes(&dst));
            let top = src_len.max(dst_len) * 8 + 64;
            let union: CpuMap = (0..top).filter(|&i| bit(&src, i) || bit(&dst, i)).collect();
            let inter: CpuMap = (0..top).filter(|&i| bit(&src, i) && bit(&dst, i)).collect();
            let diff: CpuMap = (0..top).filter(|&i| bit(&src, i) && !bit(&dst, i)).collect();
            assert_eq!(a.union(&b), union);
            assert_eq!(a.intersection(&b), inter);
            assert_eq!(a.difference(&b), diff);
            assert_eq!(a.is_subset(&b), diff.is_empty());
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
