//! Every cpumap translation checked against a plain bit-by-bit reference written here,
//! on random, all-ones, sparse and empty maps of every length 0..=1100 bytes, with
//! `nr_cpus` in 1..=9000 weighted towards byte and word boundaries, into destination
//! buffers pre-filled with garbage.

use xenvcpu::cpumap::{self, CpuMap, CpuMapError};

/// splitmix64: a small deterministic generator, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, Debug)]
enum Pattern {
    Random,
    AllOnes,
    Sparse,
    Empty,
}

const PATTERNS: [Pattern; 4] = [Pattern::Random, Pattern::AllOnes, Pattern::Sparse, Pattern::Empty];

fn make(rng: &mut Rng, len: usize, pattern: Pattern) -> Vec<u8> {
    (0..len)
        .map(|_| match pattern {
            Pattern::Random => rng.next() as u8,
            Pattern::AllOnes => 0xff,
            Pattern::Sparse if rng.below(8) == 0 => 1 << rng.below(8),
            Pattern::Sparse | Pattern::Empty => 0,
        })
        .collect()
}

fn garbage(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| (rng.next() as u8) | 0x5a).collect()
}

fn bit(map: &[u8], i: usize) -> bool {
    map[i / 8] >> (i % 8) & 1 == 1
}

/// The reference: keep bits `< keep` (that fit `dst_len`), refuse set bits in `refuse`
/// (a range of bits that would be lost), ignore the rest.
fn reference(
    src: &[u8],
    dst_len: usize,
    keep: usize,
    refuse: std::ops::Range<usize>,
) -> Result<Vec<u8>, (Vec<usize>, usize)> {
    let dropped: Vec<usize> = refuse.clone().filter(|&i| i < src.len() * 8 && bit(src, i)).collect();
    if !dropped.is_empty() {
        return Err((dropped, refuse.start));
    }
    let mut out = vec![0u8; dst_len];
    for i in 0..(dst_len * 8).min(src.len() * 8).min(keep) {
        if bit(src, i) {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(out)
}

fn ref_libvirt_to_xen(src: &[u8], dst_len: usize, nr_cpus: usize) -> Result<Vec<u8>, (Vec<usize>, usize)> {
    let limit = nr_cpus.min(dst_len * 8);
    reference(src, dst_len, limit, limit..src.len() * 8)
}

fn ref_xen_to_libvirt(src: &[u8], dst_len: usize, nr_cpus: usize) -> Result<Vec<u8>, (Vec<usize>, usize)> {
    let meaningful = nr_cpus.min(src.len() * 8);
    let cap = dst_len * 8;
    reference(src, dst_len, meaningful, cap..meaningful.max(cap))
}

/// Compares a translation's outcome with the reference's, and checks that a failed call
/// left the garbage in `dst` untouched.
fn check(
    what: &str,
    got: Result<(), CpuMapError>,
    dst: &[u8],
    before: &[u8],
    want: Result<Vec<u8>, (Vec<usize>, usize)>,
) {
    match (got, want) {
        (Ok(()), Ok(bytes)) => assert_eq!(dst, &bytes[..], "{what}: wrong bytes"),
        (Err(CpuMapError::CpusDropped { cpus, limit, .. }), Err((dropped, want_limit))) => {
            assert_eq!(cpus.iter().collect::<Vec<_>>(), dropped, "{what}: wrong CPUs named");
            assert_eq!(limit, want_limit, "{what}: wrong limit");
            assert_eq!(dst, before, "{what}: destination written on error");
        }
        (got, want) => panic!("{what}: got {got:?}, want {:?}", want.map(|_| ()).map_err(|(d, l)| (d.len(), l))),
    }
}

/// Lengths and CPU counts to try for a source of `len` bytes: the boundaries around it
/// and a random one.
fn nr_cpus_choices(rng: &mut Rng, len: usize) -> [usize; 5] {
    let bits = len * 8;
    [
        bits.clamp(1, 9000),
        (bits + 1).clamp(1, 9000),
        bits.saturating_sub(1).clamp(1, 9000),
        (bits / 64 * 64).saturating_sub(3).clamp(1, 9000),
        1 + rng.below(9000),
    ]
}

fn dst_len_choices(rng: &mut Rng, len: usize) -> [usize; 4] {
    [len, len.saturating_sub(1), len + 8, rng.below(1101)]
}

#[test]
fn libvirt_to_xen_matches_reference() {
    let mut rng = Rng(1);
    for len in 0..=1100 {
        for pattern in PATTERNS {
            let src = make(&mut rng, len, pattern);
            for dst_len in dst_len_choices(&mut rng, len) {
                for nr_cpus in nr_cpus_choices(&mut rng, dst_len) {
                    let before = garbage(&mut rng, dst_len);
                    let mut dst = before.clone();
                    let what = format!("libvirt_to_xen len={len} dst={dst_len} nr_cpus={nr_cpus} {pattern:?}");
                    let got = cpumap::libvirt_to_xen(&src, &mut dst, nr_cpus);
                    check(&what, got, &dst, &before, ref_libvirt_to_xen(&src, dst_len, nr_cpus));
                }
            }
        }
    }
}

#[test]
fn xen_to_libvirt_matches_reference() {
    let mut rng = Rng(2);
    for len in 0..=1100 {
        for pattern in PATTERNS {
            let src = make(&mut rng, len, pattern);
            for dst_len in dst_len_choices(&mut rng, len) {
                for nr_cpus in nr_cpus_choices(&mut rng, len) {
                    let before = garbage(&mut rng, dst_len);
                    let mut dst = before.clone();
                    let what = format!("xen_to_libvirt len={len} dst={dst_len} nr_cpus={nr_cpus} {pattern:?}");
                    let got = cpumap::xen_to_libvirt(&src, &mut dst, nr_cpus);
                    check(&what, got, &dst, &before, ref_xen_to_libvirt(&src, dst_len, nr_cpus));
                }
            }
        }
    }
}

#[test]
fn words_round_trip_matches_reference() {
    let mut rng = Rng(3);
    for len in 0..=1100 {
        for pattern in PATTERNS {
            let src = make(&mut rng, len, pattern);
            for nwords in [len.div_ceil(8), len / 8, len.div_ceil(8) + 1, rng.below(140)] {
                let before: Vec<u64> = (0..nwords).map(|_| rng.next() | 1).collect();
                let mut words = before.clone();
                let got = cpumap::bytes_to_words(&src, &mut words);
                let want = reference(&src, nwords * 8, usize::MAX, nwords * 64..len * 8);
                let what = format!("bytes_to_words len={len} words={nwords} {pattern:?}");
                let as_bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                let before_bytes: Vec<u8> = before.iter().flat_map(|w| w.to_le_bytes()).collect();
                check(&what, got, &as_bytes, &before_bytes, want.clone());

                if want.is_ok() {
                    // And back, into byte buffers around the source's length.
                    for out_len in [len, len.saturating_sub(1), len + 3] {
                        let before = garbage(&mut rng, out_len);
                        let mut out = before.clone();
                        let got = cpumap::words_to_bytes(&words, &mut out);
                        let want = reference(&as_bytes, out_len, usize::MAX, out_len * 8..nwords * 64);
                        let what = format!("words_to_bytes words={nwords} out={out_len} {pattern:?}");
                        check(&what, got, &out, &before, want);
                    }
                }
            }
        }
    }
}

#[test]
fn array_forms_match_per_map_reference() {
    let mut rng = Rng(4);
    // Equal lengths (the bulk path) and unequal ones, with CPU counts on and off byte
    // and word boundaries.
    for maplen in (0usize..=40).chain([63, 64, 65, 128, 257, 1100]) {
        for xen_len in [maplen, maplen.saturating_sub(1), maplen + 1, maplen + 8, rng.below(130)] {
            for nr_cpus in nr_cpus_choices(&mut rng, xen_len) {
                for pattern in PATTERNS {
                    let nvcpus = 1 + rng.below(9);
                    let src = make(&mut rng, maplen * nvcpus, pattern);
                    let what = format!("maps maplen={maplen} xen_len={xen_len} nr_cpus={nr_cpus} nvcpus={nvcpus}");

                    let before = garbage(&mut rng, xen_len * nvcpus);
                    let mut dst = before.clone();
                    let got = cpumap::libvirt_maps_to_xen(&src, maplen, nvcpus, &mut dst, xen_len, nr_cpus);
                    let want = per_map(&src, maplen, xen_len, nvcpus, |m| ref_libvirt_to_xen(m, xen_len, nr_cpus));
                    check(&format!("libvirt_maps_to_xen {what}"), got, &dst, &before, want);

                    let xen_src = make(&mut rng, xen_len * nvcpus, pattern);
                    let before = garbage(&mut rng, maplen * nvcpus);
                    let mut dst = before.clone();
                    let got = cpumap::xen_maps_to_libvirt(&xen_src, xen_len, nvcpus, &mut dst, maplen, nr_cpus);
                    let want = per_map(&xen_src, xen_len, maplen, nvcpus, |m| ref_xen_to_libvirt(m, maplen, nr_cpus));
                    check(&format!("xen_maps_to_libvirt {what}"), got, &dst, &before, want);
                }
            }
        }
    }
}

fn per_map(
    src: &[u8],
    src_len: usize,
    dst_len: usize,
    nvcpus: usize,
    one: impl Fn(&[u8]) -> Result<Vec<u8>, (Vec<usize>, usize)>,
) -> Result<Vec<u8>, (Vec<usize>, usize)> {
    let mut out = Vec::with_capacity(dst_len * nvcpus);
    for v in 0..nvcpus {
        out.extend(one(&src[v * src_len..(v + 1) * src_len])?);
    }
    Ok(out)
}

#[test]
fn array_forms_name_the_vcpu_and_check_buffer_sizes() {
    let src = [0x01, 0x00, 0x01, 0x02];
    let err = cpumap::libvirt_maps_to_xen(&src, 2, 2, &mut [0; 2], 1, 8).unwrap_err();
    assert_eq!(err, CpuMapError::CpusDropped { cpus: CpuMap::from_iter([9]), limit: 8, vcpu: Some(1) });

    let err = cpumap::libvirt_maps_to_xen(&src, 2, 3, &mut [0; 6], 2, 16).unwrap_err();
    assert_eq!(err, CpuMapError::BufferTooSmall { what: "source", needed: 6, got: 4 });
    let err = cpumap::xen_maps_to_libvirt(&src, 2, 2, &mut [0; 3], 2, 16).unwrap_err();
    assert_eq!(err, CpuMapError::BufferTooSmall { what: "destination", needed: 4, got: 3 });
    let err = cpumap::xen_maps_to_libvirt(&src, usize::MAX, 2, &mut [0; 3], 2, 16).unwrap_err();
    assert!(matches!(err, CpuMapError::SizeOverflow { .. }));
}

#[test]
fn libvirt_macros() {
    let maplen = cpumap::cpu_maplen(12);
    assert_eq!(maplen, 2);
    let mut maps = vec![0u8; maplen * 3];
    cpumap::use_cpu(cpumap::get_cpumap_mut(&mut maps, maplen, 1), 11);
    cpumap::use_cpu(cpumap::get_cpumap_mut(&mut maps, maplen, 2), 0);
    assert_eq!(maps, [0, 0, 0, 0x08, 1, 0]);
    assert!(cpumap::cpu_usable(&maps, maplen, 1, 11));
    assert!(!cpumap::cpu_usable(&maps, maplen, 0, 11));
    assert!(!cpumap::cpu_usable(&maps, maplen, 3, 0), "a vCPU beyond the array has no CPUs");
    assert!(!cpumap::cpu_usable(&maps, maplen, 1, 16), "a CPU beyond the map is not usable");
    let mut one = [0u8; 2];
    cpumap::copy_cpumap(&maps, maplen, 1, &mut one);
    assert_eq!(one, [0, 0x08]);
    cpumap::unuse_cpu(cpumap::get_cpumap_mut(&mut maps, maplen, 1), 11);
    assert!(!cpumap::cpu_used(cpumap::get_cpumap(&maps, maplen, 1), 11));
}

#[test]
#[should_panic(expected = "index out of bounds")]
fn use_cpu_beyond_the_map_panics_rather_than_dropping() {
    cpumap::use_cpu(&mut [0u8; 1], 8);
}

#[test]
fn cpumap_conversions_match_byte_translation() {
    let mut rng = Rng(5);
    for len in [0, 1, 7, 8, 9, 31, 32, 33, 64, 513] {
        let bytes = make(&mut rng, len, Pattern::Random);
        let map = CpuMap::from_libvirt_bytes(&bytes);
        let want: Vec<usize> = (0..len * 8).filter(|&i| bit(&bytes, i)).collect();
        assert_eq!(map.iter().collect::<Vec<_>>(), want);
        assert_eq!(map.to_libvirt_bytes(len).unwrap(), bytes);
        let words: Vec<u64> = map.as_words().to_vec();
        assert_eq!(CpuMap::from_words(&words), map);
    }
}

/// Found by the `cpumap_translate` fuzz target: `cpu_usable` computed `maplen * 8`, which
/// overflows (a panic in debug builds) for a `maplen` past `usize::MAX / 8`. Such a map
/// cannot fit in any array, so the answer is `false`, not a panic.
#[test]
fn cpu_usable_with_a_huge_maplen_is_false_not_an_overflow() {
    let maps = [0xffu8; 16];
    for maplen in [usize::MAX / 8 + 1, usize::MAX / 4, usize::MAX] {
        for (vcpu, cpu) in [(0, 0), (0, 7), (1, 0), (usize::MAX, usize::MAX)] {
            assert!(!cpumap::cpu_usable(&maps, maplen, vcpu, cpu), "maplen {maplen}, vCPU {vcpu}, CPU {cpu}");
        }
    }
    // The ordinary cases still hold.
    assert!(cpumap::cpu_usable(&maps, 2, 7, 15));
    assert!(!cpumap::cpu_usable(&maps, 2, 7, 16));
    assert!(!cpumap::cpu_usable(&maps, 2, 8, 0));
}
