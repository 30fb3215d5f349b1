//! Paired measurement: an operation and its baseline timed in alternating blocks inside
//! one window, so that a slow spell of the machine (another tenant, QEMU next door) hits
//! both alike and their ratio is read from the same moments. The pairing itself is in
//! `pairing.rs`; this is its criterion side and the record of every measurement's pairs.

use std::collections::HashMap;
use std::sync::Mutex;

use criterion::Bencher;

use super::pairing::{self, Pair, Paired};

/// Every call criterion made of one measurement's closure: the iterations it asked for
/// and the pairs of blocks that call timed; and the block size.
struct Record {
    block: u64,
    calls: Vec<(u64, Vec<Pair>)>,
}

/// Per label, its record.
static RECORDS: Mutex<Option<HashMap<String, Record>>> = Mutex::new(None);

/// Times `own` for criterion in blocks of `block` calls, each preceded by a block of
/// `baseline` of the same size that criterion does not count (`pairing::run_blocks`: the
/// k-th call of a block gets `k` on both sides). Every pair of blocks of every call is kept
/// under `label`; [`stats`] reads those of criterion's samples, without its warm-up. For
/// nanosecond operations a block of a few hundred calls keeps the clock's own cost out.
pub fn paired<S: ?Sized>(
    b: &mut Bencher<'_>,
    label: &str,
    block: u64,
    state: &mut S,
    mut own: impl FnMut(&mut S, usize),
    mut baseline: impl FnMut(&mut S, usize),
) {
    b.iter_custom(|iters| {
        let mut pairs = Vec::new();
        let (spent, made) = pairing::run_blocks(iters, block, state, &mut own, &mut baseline, &mut pairs);
        let mut guard = RECORDS.lock().unwrap();
        let record =
            guard.get_or_insert_with(HashMap::new).entry(label.to_string()).or_insert(Record { block, calls: vec![] });
        assert_eq!(record.block, block, "{label}: one block size per label");
        record.calls.push((iters, pairs));
        pairing::scale(spent, made, iters)
    });
}

/// The pairs of criterion's samples recorded under `label` (its warm-up calls left out),
/// `None` if that measurement did not run in this process.
pub fn stats(label: &str) -> Option<Paired> {
    let guard = RECORDS.lock().unwrap();
    let record = guard.as_ref()?.get(label)?;
    let iters: Vec<u64> = record.calls.iter().map(|c| c.0).collect();
    if !pairing::warm_up_recognised(&iters) {
        eprintln!("{label}: criterion's warm-up not recognised in its calls; every call's pairs counted");
    }
    let start = pairing::sample_start(&iters);
    let pairs: Vec<Pair> = record.calls[start..].iter().flat_map(|c| c.1.iter().copied()).collect();
    pairing::stats(&pairs, record.block)
}
