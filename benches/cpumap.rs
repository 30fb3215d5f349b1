//! The cpumap hot path against its limit and what others do, measured in one run.
//!
//! For maps of 8 … 8192 CPUs and four translations, it times our translation, a
//! `copy_from_slice` of the destination's byte count (the limit: memcpy), a naive per-bit
//! loop (the libxl_bitmap / virBitmap way) and the old libvirt byte-shift loop, on random,
//! all-ones and sparse maps; plus the 256 vCPUs x 256 CPUs `cpumaps` array. At the end it
//! prints the table of ratios to memcpy and writes an SVG plot (see benches/README.md).
//!
//! Ours is measured in pairs with memcpy (`support/paired.rs`): blocks of 256 calls of
//! each alternate within one window, and the ratio in the table is the median over the
//! pairs of blocks of all of criterion's samples (not its warm-up) of ours / memcpy, so a
//! slow spell of this shared machine slows both sides alike. Both read and write the same
//! 64-byte-aligned buffers. The naive and shift-loop baselines (10–1000× memcpy) are timed
//! on their own and divided by memcpy's own median. The report uses this run's data only.
//! See benches/README.md.
//!
//! ```text
//! cargo bench --bench cpumap
//! ```
//!
//! The translations, as benchmarked (`N` CPUs, `B = N / 8` bytes):
//! - `zero_extend`: a libvirt map of `B / 2` bytes into a Xen map of `B` bytes, from 64
//!   CPUs on (at 8 CPUs, `B = 1`: there is nothing to extend).
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
#[path = "support/paired.rs"]
mod paired;
#[path = "support/pairing.rs"]
mod pairing;
#[path = "support/report.rs"]
mod report;

use paired::paired;

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

/// Calls per block of the paired measurement: long enough (~1 µs and up) that reading the
/// clock costs nothing (the report measures the harness's own cost per call), short enough
/// (under 60 µs for the arrays) that a slow spell of the machine hits both sides.
const BLOCK: u64 = 256;

/// A buffer of `len` elements starting on a 64-byte boundary: every measurement of a row
/// reads and writes the same cache-line-aligned addresses, so memcpy and ours see the same
/// alignment (and the same 4K-aliasing) instead of whatever malloc handed out.
struct Aligned<T> {
    buf: Vec<T>,
    at: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    fn new(len: usize) -> Self {
        let buf = vec![T::default(); len + 64];
        let at = buf.as_ptr().align_offset(64);
        Aligned { buf, at, len }
    }

    fn get(&self) -> &[T] {
        &self.buf[self.at..self.at + self.len]
    }

    fn get_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.at..self.at + self.len]
    }
}

/// The bytes of a word buffer, so that memcpy reads or writes exactly where the word
/// translation does.
fn bytes_of(words: &[u64]) -> &[u8] {
    // SAFETY: `u8` has no alignment or validity requirement, and the view covers exactly
    // the words' bytes for as long as they are borrowed.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

/// [`bytes_of`], mutably.
fn bytes_of_mut(words: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(words);
    // SAFETY: as in `bytes_of`; the mutable borrow of the words is held by the view.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

fn byte_ops(c: &mut Criterion) {
    /// (name, source bytes for a B-byte map, CPUs the host lacks below N)
    type ByteOp = (&'static str, fn(usize) -> usize, usize);
    let ops: [ByteOp; 2] = [("zero_extend", |b| b / 2, 0), ("truncate", |b| b + 8, 3)];
    for (op, src_len, missing) in ops {
        let mut group = c.benchmark_group(op);
        // A zero-extension needs a shorter source: none is shorter than 1 byte.
        for n in SIZES.into_iter().filter(|&n| src_len(n / 8) > 0) {
            let (sl, dl, cpus) = (src_len(n / 8), n / 8, n - missing);
            group.throughput(Throughput::Bytes(dl as u64));
            let limit = cpus.min(dl * 8);
            // memcpy copies the first `dl` bytes of the same source buffer into the same
            // destination as ours.
            let (mut src, mut dst) = (Aligned::new(sl.max(dl)), Aligned::new(dl));
            let mut scratch = vec![0u64; sl.div_ceil(8)];
            {
                let (s, d) = (&src.get()[..dl], dst.get_mut());
                group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |bch, _| {
                    bch.iter(|| d.copy_from_slice(black_box(s)))
                });
            }
            for pattern in PATTERNS {
                src.get_mut()[..sl].copy_from_slice(&pattern_map(pattern, sl, limit, n as u64));
                let s = src.get();
                let d = dst.get_mut();
                let label = format!("{op}/{pattern}/{n}");
                group.bench_with_input(BenchmarkId::new(format!("ours_{pattern}"), n), &n, |bch, _| {
                    paired(
                        bch,
                        &label,
                        BLOCK,
                        d,
                        |d, _| cpumap::libvirt_to_xen(black_box(&s[..sl]), d, cpus).unwrap(),
                        |d, _| d.copy_from_slice(black_box(&s[..dl])),
                    )
                });
                group.bench_with_input(BenchmarkId::new(format!("naive_{pattern}"), n), &n, |bch, _| {
                    bch.iter(|| naive_bytes(black_box(&s[..sl]), d, limit).unwrap())
                });
                group.bench_with_input(BenchmarkId::new(format!("shift_{pattern}"), n), &n, |bch, _| {
                    bch.iter(|| shift_bytes(black_box(&s[..sl]), d, &mut scratch, limit).unwrap())
                });
            }
        }
        group.finish();
    }
}

fn word_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("bytes_to_words");
    for n in SIZES {
        let (b, w) = (n / 8, (n / 8).div_ceil(8));
        // The bytes live in a word buffer viewed as bytes by memcpy's destination: both
        // sides write the same 64-byte-aligned words.
        let (mut src, mut words, mut bytes_out) = (Aligned::new(b), Aligned::<u64>::new(w), Aligned::new(b));
        group.throughput(Throughput::Bytes(b as u64));
        {
            let (s, d) = (src.get(), bytes_out.get_mut());
            group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |bch, _| {
                bch.iter(|| d.copy_from_slice(black_box(s)))
            });
        }
        for pattern in PATTERNS {
            src.get_mut().copy_from_slice(&pattern_map(pattern, b, n, n as u64));
            let s = src.get();
            let words = words.get_mut();
            let label = format!("bytes_to_words/{pattern}/{n}");
            // memcpy writes the same bytes of the same word buffer.
            group.bench_with_input(BenchmarkId::new(format!("ours_{pattern}"), n), &n, |bch, _| {
                paired(
                    bch,
                    &label,
                    BLOCK,
                    words,
                    |w, _| cpumap::bytes_to_words(black_box(s), w).unwrap(),
                    |w, _| bytes_of_mut(w)[..b].copy_from_slice(black_box(s)),
                )
            });
            group.bench_with_input(BenchmarkId::new(format!("naive_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| naive_to_words(black_box(s), words))
            });
            group.bench_with_input(BenchmarkId::new(format!("shift_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| shift_to_words(black_box(s), words))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("words_to_bytes");
    for n in SIZES {
        let (b, w) = (n / 8, (n / 8).div_ceil(8));
        let (mut words, mut dst, copy_src) = (Aligned::<u64>::new(w), Aligned::new(b), Aligned::<u8>::new(b));
        group.throughput(Throughput::Bytes(b as u64));
        {
            let (s, d) = (copy_src.get(), dst.get_mut());
            group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |bch, _| {
                bch.iter(|| d.copy_from_slice(black_box(s)))
            });
        }
        for pattern in PATTERNS {
            cpumap::bytes_to_words(&pattern_map(pattern, b, n, n as u64), words.get_mut()).unwrap();
            // memcpy reads the same bytes of the same word buffer.
            let (s, d) = (words.get(), dst.get_mut());
            let cs = &bytes_of(s)[..b];
            let label = format!("words_to_bytes/{pattern}/{n}");
            group.bench_with_input(BenchmarkId::new(format!("ours_{pattern}"), n), &n, |bch, _| {
                paired(
                    bch,
                    &label,
                    BLOCK,
                    d,
                    |d, _| cpumap::words_to_bytes(black_box(s), d).unwrap(),
                    |d, _| d.copy_from_slice(black_box(cs)),
                )
            });
            group.bench_with_input(BenchmarkId::new(format!("naive_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| naive_from_words(black_box(s), d))
            });
            group.bench_with_input(BenchmarkId::new(format!("shift_{pattern}"), n), &n, |bch, _| {
                bch.iter(|| shift_from_words(black_box(s), d))
            });
        }
    }
    group.finish();
}

/// libvirt's `cpumaps` array for 256 vCPUs x 256 CPUs, both directions; the Xen side is
/// the same length (the bulk path). `xen_to_libvirt_masked` is the same on a 252-CPU
/// host, where every map's last byte needs its mask after the bulk copy.
fn arrays(c: &mut Criterion) {
    const NVCPUS: usize = 256;
    const MAPLEN: usize = 32;
    const LEN: usize = NVCPUS * MAPLEN;
    let mut group = c.benchmark_group("array_256x256");
    group.throughput(Throughput::Bytes(LEN as u64));
    let (mut src, mut dst) = (Aligned::new(LEN), Aligned::new(LEN));
    {
        let (s, d) = (src.get(), dst.get_mut());
        group.bench_function(BenchmarkId::new("memcpy", "both"), |bch| bch.iter(|| d.copy_from_slice(black_box(s))));
    }
    for pattern in PATTERNS {
        src.get_mut().copy_from_slice(&pattern_map(pattern, LEN, LEN * 8, 7));
        let (s, d) = (src.get(), dst.get_mut());
        for (dir, host) in [("libvirt_to_xen", 256), ("xen_to_libvirt", 256), ("xen_to_libvirt_masked", 252)] {
            let label = format!("array/{pattern}/{dir}");
            group.bench_function(BenchmarkId::new(format!("ours_{pattern}"), dir), |bch| {
                paired(
                    bch,
                    &label,
                    BLOCK,
                    &mut *d,
                    |d, _| {
                        if dir == "libvirt_to_xen" {
                            cpumap::libvirt_maps_to_xen(black_box(s), MAPLEN, NVCPUS, d, MAPLEN, host).unwrap()
                        } else {
                            cpumap::xen_maps_to_libvirt(black_box(s), MAPLEN, NVCPUS, d, MAPLEN, host).unwrap()
                        }
                    },
                    |d, _| d.copy_from_slice(black_box(s)),
                )
            });
        }
        group.bench_function(BenchmarkId::new(format!("per_map_{pattern}"), "libvirt_to_xen"), |bch| {
            bch.iter(|| {
                for (s, d) in black_box(s).chunks_exact(MAPLEN).zip(d.chunks_exact_mut(MAPLEN)) {
                    cpumap::libvirt_to_xen(s, d, 256).unwrap();
                }
            })
        });
        group.bench_function(BenchmarkId::new(format!("naive_{pattern}"), "libvirt_to_xen"), |bch| {
            bch.iter(|| {
                for (s, d) in black_box(s).chunks_exact(MAPLEN).zip(d.chunks_exact_mut(MAPLEN)) {
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
    criterion_data::mark_start();
    benches();
    Criterion::default().configure_from_args().final_summary();
    report::write(&SIZES, &PATTERNS, BLOCK);
}
