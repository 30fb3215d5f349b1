//! Paired measurement: an operation and its baseline timed in alternating blocks inside
//! one window, so that a slow spell of the machine (another tenant, QEMU next door) hits
//! both alike and their ratio is read from the same moments.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Bencher;

/// The (own, baseline) time of every block of one measurement, in ns.
type Blocks = Vec<(f64, f64)>;

/// Per label, the blocks of its measurement.
static BLOCKS: Mutex<Option<HashMap<String, Blocks>>> = Mutex::new(None);

/// Times `own` for criterion in blocks of `block` calls, each preceded by a block of
/// `baseline` of the same size that criterion does not count; both block times are kept
/// under `label` for [`stats`]. Both get `state` (the buffers they share) and the call's
/// number. With `block == 1` every call is paired; for nanosecond operations a block of a
/// few hundred calls keeps the clock's own cost out.
pub fn paired<S: ?Sized>(
    b: &mut Bencher<'_>,
    label: &str,
    block: u64,
    state: &mut S,
    mut own: impl FnMut(&mut S, usize),
    mut baseline: impl FnMut(&mut S, usize),
) {
    let mut i = 0usize;
    let mut blocks = Vec::new();
    b.iter_custom(|iters| {
        let mut spent = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(block);
            let t = Instant::now();
            for _ in 0..n {
                i += 1;
                baseline(state, i);
            }
            let base = t.elapsed();
            let t = Instant::now();
            for _ in 0..n {
                i += 1;
                own(state, i);
            }
            let mine = t.elapsed();
            spent += mine;
            blocks.push((mine.as_nanos() as f64, base.as_nanos() as f64));
            left -= n;
        }
        spent
    });
    BLOCKS.lock().unwrap().get_or_insert_with(HashMap::new).insert(label.to_string(), blocks);
}

/// What the blocks recorded under one label say.
#[allow(dead_code)] // each bench reads the fields it reports
pub struct Paired {
    /// The median over the blocks of own time / baseline time.
    pub ratio: f64,
    /// The median block times, own and baseline, in ns per call.
    pub own_ns: f64,
    pub baseline_ns: f64,
    /// How many blocks were recorded.
    pub blocks: usize,
}

/// The paired blocks recorded under `label`, `None` if that measurement did not run.
/// `block` is the block size it ran with (for the per-call times).
pub fn stats(label: &str, block: u64) -> Option<Paired> {
    let guard = BLOCKS.lock().unwrap();
    let blocks = guard.as_ref()?.get(label)?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let ratio = median(blocks.iter().filter(|(_, b)| *b > 0.0).map(|(o, b)| o / b).collect())?;
    let own_ns = median(blocks.iter().map(|b| b.0).collect())? / block as f64;
    let baseline_ns = median(blocks.iter().map(|b| b.1).collect())? / block as f64;
    Some(Paired { ratio, own_ns, baseline_ns, blocks: blocks.len() })
}
