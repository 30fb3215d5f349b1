//! Fuzzes the cpu-list parser: it must never panic, and whatever it accepts must format
//! canonically and parse back to the same map, within the host it was given (no CPU at or
//! past the host's CPU count; without a host, none past `MAX_UNBOUNDED_CPU`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenvcpu::cpumap::{CpuListContext, CpuMap, MAX_UNBOUNDED_CPU};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let nodes = [CpuMap::from_iter(0..4), CpuMap::from_iter(4..8)];
    for (ctx, bound) in
        [(CpuListContext::new(), MAX_UNBOUNDED_CPU + 1), (CpuListContext::new().host_cpus(8).nodes(&nodes), 8)]
    {
        if let Ok(map) = ctx.parse(text) {
            assert!(map.last().is_none_or(|cpu| cpu < bound), "{text:?} -> {map} beyond {bound}");
            let canonical = map.to_string();
            assert_eq!(ctx.parse(&canonical).as_ref(), Ok(&map), "{text:?} -> {canonical:?}");
            assert_eq!(canonical.parse::<CpuMap>().as_ref(), Ok(&map));
        }
    }
});
