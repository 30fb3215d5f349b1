//! The logic of the paired measurement, free of criterion: how blocks of an operation and
//! of its baseline alternate, which of criterion's calls are its warm-up, and what the
//! pairs say. `paired.rs` drives it from criterion; `tests/bench_pairing.rs` checks it
//! under plain `cargo test`.

// Included by both benches and by a test, each of which uses a part.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// One pair: the time of a block of `own` calls and of the block of `baseline` calls
/// made just before it, in ns.
pub type Pair = (f64, f64);

/// Runs whole blocks of `block` calls until `own` has been called at least `iters` times,
/// each block of `own` paired with a block of `baseline` of the same size, and appends one
/// [`Pair`] per block to `pairs`. The pairs take turns at which side goes first (the
/// baseline in the first pair, `own` in the second, and so on), so that whatever the
/// first block of a pair leaves the second (a clock that stood still, a cache warmed or
/// evicted, work the hypervisor does later) falls on both sides alike.
///
/// The k-th call of a block gets `k` on both sides, so a closure that chooses its work by
/// that index does the same sequence of work on both sides. Every block also starts from
/// what the block before it left, of either side, which for a fixed sequence is the end of
/// that same sequence: with `block >= 2` and the work alternating with `k` (as the affinity
/// bench's maps do), both sides make the same transitions.
///
/// Only whole blocks run, so that no block is cut short: returns `own`'s total time and
/// the number of `own` calls made (a multiple of `block`, from `iters` to
/// `iters + block - 1`). Panics if `block` is 0.
pub fn run_blocks<S: ?Sized>(
    iters: u64,
    block: u64,
    state: &mut S,
    own: &mut impl FnMut(&mut S, usize),
    baseline: &mut impl FnMut(&mut S, usize),
    pairs: &mut Vec<Pair>,
) -> (Duration, u64) {
    assert!(block > 0, "a block has at least one call");
    let blocks = iters.div_ceil(block).max(1);
    let mut spent = Duration::ZERO;
    for n in 0..blocks {
        let (mine, base) = if n % 2 == 0 {
            let base = timed(block, state, baseline);
            (timed(block, state, own), base)
        } else {
            let mine = timed(block, state, own);
            (mine, timed(block, state, baseline))
        };
        spent += mine;
        pairs.push((mine.as_nanos() as f64, base.as_nanos() as f64));
    }
    (spent, blocks * block)
}

/// The time of one block: `f` called with `0..block`.
fn timed<S: ?Sized>(block: u64, state: &mut S, f: &mut impl FnMut(&mut S, usize)) -> Duration {
    let t = Instant::now();
    for k in 0..block as usize {
        f(state, k);
    }
    t.elapsed()
}

/// `spent` for `made` calls, scaled to `iters` calls: what criterion is told when whole
/// blocks made more calls than it asked for.
pub fn scale(spent: Duration, made: u64, iters: u64) -> Duration {
    if made == 0 {
        return spent;
    }
    let ns = spent.as_nanos() * u128::from(iters) / u128::from(made);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// Where criterion's sampling starts among the iteration counts it asked for, one per
/// call of the benchmark's closure, in order.
///
/// criterion 0.5 first warms up with 1, 2, 4, … iterations (doubling until its warm-up
/// time is spent), then takes its samples: `d, 2d, 3d, …, nd` (linear sampling) or `n`
/// times `d` (flat). The sampling is the suffix of that shape that follows a doubling
/// prefix; where a call could be either the last of the warm-up or the first sample (flat
/// sampling with `d` a power of two), it is counted as warm-up. A sequence of any other shape (criterion's
/// quick or profiling modes) has no recognised warm-up: all of it is returned as samples
/// (index 0), and [`warm_up_recognised`] says so.
pub fn sample_start(iters: &[u64]) -> usize {
    sample_split(iters).unwrap_or(0)
}

/// Whether [`sample_start`] recognised criterion's warm-up and sampling in `iters`.
pub fn warm_up_recognised(iters: &[u64]) -> bool {
    sample_split(iters).is_some()
}

fn sample_split(iters: &[u64]) -> Option<usize> {
    if iters.is_empty() {
        return None;
    }
    let doubling = iters.iter().enumerate().take_while(|&(j, &n)| j < 64 && n == 1u64 << j).count();
    let linear = |p: usize| iters[p..].iter().zip(1u64..).all(|(&n, j)| Some(n) == iters[p].checked_mul(j));
    let flat = |p: usize| iters[p..].iter().all(|&n| n == iters[p]);
    // The earliest start after a doubling prefix: a later one would take the first samples
    // of a linear sampling for warm-up (two linear samples never continue a doubling).
    let p = (0..=doubling.min(iters.len() - 1)).find(|&p| linear(p) || flat(p))?;
    // A flat sampling of d = the last warm-up's count would take that call for a sample.
    Some(if p < doubling && !linear(p) && iters.len() - p > 1 { p + 1 } else { p })
}

/// What the pairs of one measurement say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// The median over the pairs of own time / baseline time.
    pub ratio: f64,
    /// The median block time of own, in ns per call.
    pub own_ns: f64,
    /// The median block time of the baseline, in ns per call.
    pub baseline_ns: f64,
    /// How many pairs of blocks the figures rest on.
    pub pairs: usize,
    /// Calls per block, on each side.
    pub block: u64,
}

/// The statistics of `pairs` of blocks of `block` calls; `None` if there are none.
pub fn stats(pairs: &[Pair], block: u64) -> Option<Paired> {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let ratio = median(pairs.iter().filter(|(_, b)| *b > 0.0).map(|(o, b)| o / b).collect())?;
    let own_ns = median(pairs.iter().map(|p| p.0).collect())? / block as f64;
    let baseline_ns = median(pairs.iter().map(|p| p.1).collect())? / block as f64;
    Some(Paired { ratio, own_ns, baseline_ns, pairs: pairs.len(), block })
}
