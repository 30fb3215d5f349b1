//! The paired measurement's logic (`benches/support/pairing.rs`), which the benches cannot
//! test themselves: both sides of a pair do the same work, only whole blocks run,
//! criterion's warm-up calls are told apart from its samples, and the statistics.

#[path = "../benches/support/pairing.rs"]
mod pairing;

use std::time::Duration;

use pairing::{run_blocks, sample_start, scale, stats, warm_up_recognised};

/// What each side saw, call by call: (side, index given).
fn trace(iters: u64, block: u64) -> (Vec<(char, usize)>, u64, usize) {
    let mut log = Vec::new();
    let mut pairs = Vec::new();
    let (_, made) = run_blocks(
        iters,
        block,
        &mut log,
        &mut |log: &mut Vec<(char, usize)>, k| log.push(('o', k)),
        &mut |log: &mut Vec<(char, usize)>, k| log.push(('b', k)),
        &mut pairs,
    );
    (log, made, pairs.len())
}

#[test]
fn both_sides_get_the_same_indices_block_by_block() {
    for (iters, block) in [(1, 1), (7, 1), (10, 2), (11, 2), (1000, 256), (3, 256), (513, 256)] {
        let (log, made, pairs) = trace(iters, block);
        let block = block as usize;
        assert_eq!(log.len(), 2 * made as usize);
        assert_eq!(pairs * block, made as usize, "one pair per block");
        for (n, chunk) in log.chunks(2 * block).enumerate() {
            let (first, second) = chunk.split_at(block);
            let (base, own) = if n % 2 == 0 { (first, second) } else { (second, first) };
            assert!(
                base.iter().all(|e| e.0 == 'b'),
                "pair {n}: the baseline's block goes {}",
                ["first", "second"][n % 2]
            );
            assert!(own.iter().all(|e| e.0 == 'o'), "pair {n}: own's block goes {}", ["second", "first"][n % 2]);
            let base_idx: Vec<usize> = base.iter().map(|e| e.1).collect();
            let own_idx: Vec<usize> = own.iter().map(|e| e.1).collect();
            assert_eq!(base_idx, own_idx, "block {n}: the k-th calls of both sides get the same index");
            assert_eq!(own_idx, (0..block).collect::<Vec<_>>());
        }
    }
}

#[test]
fn only_whole_blocks_run() {
    for (iters, block) in [(1u64, 1u64), (1, 2), (2, 2), (3, 2), (255, 256), (256, 256), (257, 256), (0, 4)] {
        let (_, made, _) = trace(iters, block);
        assert_eq!(made % block, 0, "{iters} iters, block {block}");
        assert!(made >= iters.max(1) && made < iters.max(1) + block, "{iters} iters, block {block}: {made} calls");
    }
}

/// The affinity bench's update: the work is the map chosen by the index (all CPUs, CPU 0)
/// applied to a shared state. Both sides must make the same transitions, and change the
/// map every time.
#[test]
fn alternating_updates_make_the_same_transitions_on_both_sides() {
    #[derive(Default)]
    struct Vcpu {
        map: usize,
        own: Vec<(usize, usize)>,
        base: Vec<(usize, usize)>,
    }
    let maps = [0xf, 0x1];
    let mut vcpu = Vcpu { map: 0x3, ..Vcpu::default() }; // some map neither side sets
    let mut pairs = Vec::new();
    run_blocks(
        1000,
        2,
        &mut vcpu,
        &mut |v: &mut Vcpu, k| {
            v.own.push((v.map, maps[k % 2]));
            v.map = maps[k % 2];
        },
        &mut |v: &mut Vcpu, k| {
            v.base.push((v.map, maps[k % 2]));
            v.map = maps[k % 2];
        },
        &mut pairs,
    );
    assert_eq!(vcpu.own.len(), 1000);
    // The very first block starts from the map found before the measurement.
    assert_eq!(vcpu.base[0], (0x3, 0xf));
    assert_eq!(
        vcpu.own[..],
        vcpu.base[..].iter().enumerate().map(|(j, &t)| if j == 0 { (0x1, 0xf) } else { t }).collect::<Vec<_>>()[..]
    );
    assert!(vcpu.own.iter().all(|(from, to)| from != to), "every update changes the map");
    assert!(vcpu.base[1..].iter().all(|(from, to)| from != to), "every update changes the map");
}

#[test]
fn scaling_to_the_iterations_asked_for() {
    assert_eq!(scale(Duration::from_nanos(2560), 256, 1), Duration::from_nanos(10));
    assert_eq!(scale(Duration::from_nanos(1000), 4, 4), Duration::from_nanos(1000));
    assert_eq!(scale(Duration::from_nanos(1000), 4, 3), Duration::from_nanos(750));
}

/// criterion 0.5's call sequences: warm-up 1, 2, 4, … then linear `d, 2d, …, nd` or flat.
#[test]
fn criterion_warm_up_is_told_apart() {
    let linear = |warm: u32, d: u64, n: u64| -> Vec<u64> {
        (0..warm).map(|j| 1u64 << j).chain((1..=n).map(|j| j * d)).collect()
    };
    for (warm, d, n) in [(5, 7, 30), (5, 64, 30), (5, 32, 30), (1, 2, 20), (12, 1, 20), (3, 8, 3), (9, 512, 10)] {
        let iters = linear(warm, d, n);
        assert!(warm_up_recognised(&iters), "{iters:?}");
        assert_eq!(sample_start(&iters), warm as usize, "linear, d = {d}: {iters:?}");
    }
    let flat = |warm: u32, d: u64, n: usize| -> Vec<u64> {
        (0..warm).map(|j| 1u64 << j).chain(std::iter::repeat_n(d, n)).collect()
    };
    assert_eq!(sample_start(&flat(6, 100, 10)), 6);
    // d the next power of two: the first sample could be warm-up; it is counted as such.
    assert_eq!(sample_start(&flat(6, 64, 10)), 7);
    // criterion's test mode: one call of one iteration.
    assert_eq!(sample_start(&[1]), 0);
    // Not criterion's shape: nothing recognised, everything counted.
    assert!(!warm_up_recognised(&[3, 5, 4]));
    assert_eq!(sample_start(&[3, 5, 4]), 0);
    assert!(!warm_up_recognised(&[]));
}

#[test]
fn statistics_of_pairs() {
    let pairs = [(110.0, 100.0), (300.0, 200.0), (90.0, 100.0), (1200.0, 1000.0), (100.0, 0.0)];
    let s = stats(&pairs, 10).unwrap();
    // Ratios 1.1, 1.5, 0.9, 1.2 (the zero baseline left out): median of four = the upper middle.
    assert_eq!(s.ratio, 1.2);
    assert_eq!(s.own_ns, 11.0); // median of 90, 100, 110, 300, 1200 over 10 calls
    assert_eq!(s.baseline_ns, 10.0);
    assert_eq!((s.pairs, s.block), (5, 10));
    assert!(stats(&[], 1).is_none());
}
