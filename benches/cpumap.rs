//! The cpumap hot path against its limit and what others do, measured in one run.
//!
//! For maps of 8 … 8192 CPUs and four translations, it times our translation, a
//! `copy_from_slice` of the destination's byte count (the limit: memcpy), a naive per-bit
//! loop (the libxl_bitmap / virBitmap way) and the old libvirt byte-shift loop, on random,
//! all-ones and sparse maps; plus the 256 vCPUs x 256 CPUs `cpumaps` array. At the end it
//! prints the table of ratios to memcpy and writes an SVG plot (see README.md):
//!
//! ```text
//! cargo bench --bench cpumap
//! ```
//!
//! The translations, as benchmarked (`N` CPUs, `B = N / 8` bytes):
//! - `zero_extend`: a libvirt map of `B / 2` bytes into a Xen map of `B` bytes.
//! - `truncate`: a libvirt map of `B + 8` bytes (its last word clear) into a Xen map of
//!   `B` bytes for a host of `N - 3` CPUs, checking that no set bit is dropped.
//! - `bytes_to_words`: `B` bytes into `B / 8` words; `words_to_bytes`: back.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use xenvcpu::cpumap;

#[path = "support/criterion_data.rs"]
mod criterion_data;
#[path = "support/report.rs"]
mod report;

const SIZES: [usize; 6] = [8, 64, 256, 1024, 4096, 8192];
const PATTERNS: [&str; 3] = ["random", "ones", "sparse"];

/// A map of `len` bytes whose set bits all lie below `valid_bits`.
fn pattern_map(pattern: &str, len: usize, valid_bits: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut map: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match pattern {
                "random" => x as u8,
                "ones" => 0xff,
                _ if x % 16 == 0 => 1 << ((x >> 8) % 8),
                _ => 0,
            }
        })
        .collect();
    for bit in valid_bits..len * 8 {
        map[bit / 8] &= !(1 << (bit % 8));
    }
    map
}

// ---- Baselines -------------------------------------------------------------------------

/// The naive per-bit loop: test each source bit, set it in a cleared destination,
/// refusing bits past the limit (the libxl_bitmap / virBitmap way).
fn naive_bytes(src: &[u8], dst: &mut [u8], limit: usize) -> Result<(), usize> {
    dst.fill(0);
    for i in 0..src.len() * 8 {
        if src[i / 8] & (1 << (i % 8)) != 0 {
            if i >= limit {
                return Err(i);
            }
            dst[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(())
}

fn naive_to_words(src: &[u8], dst: &mut [u64]) {
    dst.fill(0);
    for i in 0..src.len() * 8 {
        if src[i / 8] & (1 << (i % 8)) != 0 {
            dst[i / 64] |= 1 << (i % 64);
        }
    }
}

fn naive_from_words(src: &[u64], dst: &mut [u8]) {
    dst.fill(0);
    for i in 0..src.len() * 64 {
        if src[i / 64] & (1 << (i % 64)) != 0 {
            dst[i / 8] |= 1 << (i % 8);
        }
    }
}

/// The old libvirt loop `pm[j / 8] |= cpumap[j] << (8 * (j & 7))`, with the cast to
/// `u64` that the C code lacked.
fn shift_to_words(src: &[u8], dst: &mut [u64]) {
    dst.fill(0);
    for (j, &b) in src.iter().enumerate() {
        dst[j / 8] |= u64::from(b) << (8 * (j & 7));
    }
}

fn shift_from_words(src: &[u64], dst: &mut [u8]) {
    for (j, d) in dst.iter_mut().enumerate() {
        *d = src.get(j / 8).map_or(0, |w| (w >> (8 * (j & 7))) as u8);
    }
}

/// Byte map to byte map the old libvirt way: through a word with the shift loop, then
/// out again, refusing set bits past the limit.
fn shift_bytes(src: &[u8], dst: &mut [u8], scratch: &mut [u64], limit: usize) -> Result<(), usize> {
    shift_to_words(src, scratch);
    for (w, &word) in scratch.iter().enumerate() {
        let high = if limit >= (w + 1) * 64 {
            0
        } else if limit <= w * 64 {
            word
        } else {
            word >> (limit % 64)
        };
        if high != 0 {
            return Err(w);
        }
    }
    shift_from_words(scratch, dst);
    Ok(())
}

// ---- Benchmarks ------------------------------------------------------------------------

fn byte_ops(c: &mut Criterion) {
    /// (name, source bytes for a B-byte map, CPUs the host lacks below N)
    type ByteOp = (&'static str, fn(usize) -> usize, usize);
    let ops: [ByteOp; 2] = [("zero_extend", |b| b.div_ceil(2), 0), ("truncate", |b| b + 8, 3)];
    for (op, src_len, missing) in ops {
        let mut group = c.benchmark_group(op);
        for n in SIZES {
            let (sl, dl, cpus) = (src_len(n / 8), n / 8, n - missing);
            group.throughput(Throughput::Bytes(dl as u64));
            let limit = cpus.min(dl * 8);
            let mut dst = vec![0u8; dl];
            let mut scratch = vec![0u64; sl.div_ceil(8)];
            let copy_src = vec![0x5au8; dl];
            group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |bch, _| {
                bch.iter(|| dst.copy_from_slice(black_box(&copy_src)))
            });
            for pattern in PATTERNS {
                let src = pattern_map(pattern, sl, limit, n as u64);
                group.bench_with_input(BenchmarkId::new(format!("ours_{pattern}"), n), &n, |bch, _| {
                    bch.iter(|| cpumap::libvirt_to_xen(black_box(&src), &mut dst, cpus).unwrap())
                });
                group.bench_with_input(BenchmarkId::new(format!("naive_{pattern}"), n), &n, |bch, _| {
                    bch.iter(|| naive_bytes(black_box(&src), &mut dst, limit).unwrap())
                });
                group.bench_with_input(BenchmarkId::new(format!("shift_{pattern}"), n), &n, |bch, _| {
                    bch.iter(|| shift_bytes(black_box(&src), &mut dst, &mut scratch, limit).unwrap())
                });
            }
        }
        group.finish();
    }
}

fn word_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("bytes_to_words");
    for n in SIZES {
        let b = n / 8;
        let mut words = vec![0u64; b.div_ceil(8)];
        let mut dst = vec![0u8; b];
        let copy_src = vec![0x5au8; b];
        group.throughput(Throughput::Bytes(b as u64));
        group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |bch, _| {
            bch.iter(|| dst.copy_from_slice(black_box(&copy_src)))
        });
        for pattern in PATTERNS {
            let src = pattern_map(pattern, b, n, n as u64);
            group.bench_with_input(BenchmarkId::new(format!("ours_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| cpumap::bytes_to_words(black_box(&src), &mut words).unwrap())
            });
            group.bench_with_input(BenchmarkId::new(format!("naive_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| naive_to_words(black_box(&src), &mut words))
            });
            group.bench_with_input(BenchmarkId::new(format!("shift_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| shift_to_words(black_box(&src), &mut words))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("words_to_bytes");
    for n in SIZES {
        let b = n / 8;
        let mut dst = vec![0u8; b];
        let copy_src = vec![0x5au8; b];
        group.throughput(Throughput::Bytes(b as u64));
        group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |bch, _| {
            bch.iter(|| dst.copy_from_slice(black_box(&copy_src)))
        });
        for pattern in PATTERNS {
            let bytes = pattern_map(pattern, b, n, n as u64);
            let mut words = vec![0u64; b.div_ceil(8)];
            cpumap::bytes_to_words(&bytes, &mut words).unwrap();
            group.bench_with_input(BenchmarkId::new(format!("ours_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| cpumap::words_to_bytes(black_box(&words), &mut dst).unwrap())
            });
            group.bench_with_input(BenchmarkId::new(format!("naive_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| naive_from_words(black_box(&words), &mut dst))
            });
            group.bench_with_input(BenchmarkId::new(format!("shift_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| shift_from_words(black_box(&words), &mut dst))
            });
        }
    }
    group.finish();
}

/// libvirt's `cpumaps` array for 256 vCPUs x 256 CPUs, both directions; the Xen side is
/// the same length (the bulk path). `xen_to_libvirt` uses a 252-CPU host so that every
/// map's last byte needs its mask.
fn arrays(c: &mut Criterion) {
    const NVCPUS: usize = 256;
    const MAPLEN: usize = 32;
    let mut group = c.benchmark_group("array_256x256");
    group.throughput(Throughput::Bytes((NVCPUS * MAPLEN) as u64));
    let copy_src = vec![0x5au8; NVCPUS * MAPLEN];
    let mut dst = vec![0u8; NVCPUS * MAPLEN];
    group.bench_function(BenchmarkId::new("memcpy", "both"), |bch| {
        bch.iter(|| dst.copy_from_slice(black_box(&copy_src)))
    });
    for pattern in PATTERNS {
        let src = pattern_map(pattern, NVCPUS * MAPLEN, NVCPUS * MAPLEN * 8, 7);
        group.bench_function(BenchmarkId::new(format!("ours_{pattern}"), "libvirt_to_xen"), |bch| {
            bch.iter(|| cpumap::libvirt_maps_to_xen(black_box(&src), MAPLEN, NVCPUS, &mut dst, MAPLEN, 256).unwrap())
        });
        group.bench_function(BenchmarkId::new(format!("ours_{pattern}"), "xen_to_libvirt"), |bch| {
            bch.iter(|| cpumap::xen_maps_to_libvirt(black_box(&src), MAPLEN, NVCPUS, &mut dst, MAPLEN, 252).unwrap())
        });
        group.bench_function(BenchmarkId::new(format!("per_map_{pattern}"), "libvirt_to_xen"), |bch| {
            bch.iter(|| {
                for (s, d) in black_box(&src).chunks_exact(MAPLEN).zip(dst.chunks_exact_mut(MAPLEN)) {
                    cpumap::libvirt_to_xen(s, d, 256).unwrap();
                }
            })
        });
        group.bench_function(BenchmarkId::new(format!("naive_{pattern}"), "libvirt_to_xen"), |bch| {
            bch.iter(|| {
                for (s, d) in black_box(&src).chunks_exact(MAPLEN).zip(dst.chunks_exact_mut(MAPLEN)) {
                    naive_bytes(s, d, 256).unwrap();
                }
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = byte_ops, word_ops, arrays
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report::write(&SIZES, &PATTERNS);
}
