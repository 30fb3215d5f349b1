//! The cpu-list syntax: every accepted form, every error, and the examples of xl.cfg(5)
//! and virsh's documentation.

use xenvcpu::cpumap::{CpuListContext, CpuListError, CpuMap, TokenPos, MAX_UNBOUNDED_CPU};

fn cpus(list: &str, ctx: &CpuListContext<'_>) -> Vec<usize> {
    ctx.parse(list).unwrap_or_else(|e| panic!("{list:?}: {e}")).iter().collect()
}

fn two_nodes() -> [CpuMap; 2] {
    ["0-3".parse().unwrap(), "4-7".parse().unwrap()]
}

#[test]
fn accepted_forms() {
    let nodes = two_nodes();
    let ctx = CpuListContext::new().host_cpus(8).nodes(&nodes);
    let cases: &[(&str, &[usize])] = &[
        ("3", &[3]),
        ("0-2", &[0, 1, 2]),
        ("5-5", &[5]),
        ("0-3,^1", &[0, 2, 3]),
        ("0-7,^2-5", &[0, 1, 6, 7]),
        ("all", &[0, 1, 2, 3, 4, 5, 6, 7]),
        ("all,^0-6", &[7]),
        ("^3,3", &[3]),
        ("3,^3", &[]),
        (" 1 , 2 ,\t3 ", &[1, 2, 3]),
        ("node:1", &[4, 5, 6, 7]),
        ("nodes:0-1,^node:0", &[4, 5, 6, 7]),
        ("nodes:all,^2", &[0, 1, 3, 4, 5, 6, 7]),
        ("^node:0,1", &[1]),
        ("007", &[7]),
        ("", &[]),
        ("   ", &[]),
    ];
    for (list, want) in cases {
        assert_eq!(cpus(list, &ctx), *want, "{list:?}");
    }
}

#[test]
fn xl_cfg_and_virsh_examples() {
    // xl.cfg(5) cpus= examples, on a 16-CPU host with 4 nodes of 4 CPUs.
    let nodes: Vec<CpuMap> = (0..4).map(|n| CpuMap::from_iter(n * 4..n * 4 + 4)).collect();
    let ctx = CpuListContext::new().host_cpus(16).nodes(&nodes);
    assert_eq!(cpus("0-3,5,^1", &ctx), [0, 2, 3, 5]);
    assert_eq!(cpus("all,^7", &ctx), (0..16).filter(|&c| c != 7).collect::<Vec<_>>());
    assert_eq!(cpus("nodes:0-3,^node:2", &ctx), [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15]);
    assert_eq!(cpus("1,node:1,^6", &ctx), [1, 4, 5, 7]);
    assert_eq!(cpus("2", &ctx), [2]);
    assert_eq!(cpus("3-8,^5", &ctx), [3, 4, 6, 7, 8]);
    // virsh vcpupin / emulatorpin documentation: "1-4,^3,6" and "0,1".
    assert_eq!(cpus("1-4,^3,6", &ctx), [1, 2, 4, 6]);
    assert_eq!(cpus("0,1", &ctx), [0, 1]);
}

fn pos(token: &str, index: usize, offset: usize) -> TokenPos {
    TokenPos { token: token.into(), index, offset }
}

#[test]
fn every_error_names_its_token() {
    let nodes = two_nodes();
    let host = CpuListContext::new().host_cpus(8).nodes(&nodes);
    let bare = CpuListContext::new();
    let cases: Vec<(&str, &CpuListContext<'_>, CpuListError)> = vec![
        ("1,,2", &host, CpuListError::EmptyToken(pos("", 2, 2))),
        ("1,", &host, CpuListError::EmptyToken(pos("", 2, 2))),
        (",1", &host, CpuListError::EmptyToken(pos("", 1, 0))),
        ("1, x", &host, CpuListError::Junk(pos("x", 2, 3))),
        ("1-", &host, CpuListError::Junk(pos("1-", 1, 0))),
        ("-1", &host, CpuListError::Junk(pos("-1", 1, 0))),
        ("1-2-3", &host, CpuListError::Junk(pos("1-2-3", 1, 0))),
        ("+1", &host, CpuListError::Junk(pos("+1", 1, 0))),
        ("1 2", &host, CpuListError::Junk(pos("1 2", 1, 0))),
        ("^", &host, CpuListError::Junk(pos("^", 1, 0))),
        ("^^1", &host, CpuListError::Junk(pos("^^1", 1, 0))),
        ("ALL", &host, CpuListError::Junk(pos("ALL", 1, 0))),
        ("0x3", &host, CpuListError::Junk(pos("0x3", 1, 0))),
        ("node:", &host, CpuListError::Junk(pos("node:", 1, 0))),
        ("0,5-3", &host, CpuListError::ReversedRange { pos: pos("5-3", 2, 2), start: 5, end: 3 }),
        (
            "99999999999999999999999",
            &host,
            CpuListError::Overflow { pos: pos("99999999999999999999999", 1, 0), limit: MAX_UNBOUNDED_CPU },
        ),
        ("2000000", &bare, CpuListError::Overflow { pos: pos("2000000", 1, 0), limit: MAX_UNBOUNDED_CPU }),
        ("^all", &host, CpuListError::NegatedAll(pos("^all", 1, 0))),
        ("^nodes:all", &host, CpuListError::NegatedAll(pos("^nodes:all", 1, 0))),
        ("all", &bare, CpuListError::AllWithoutHost(pos("all", 1, 0))),
        ("1,node:0", &bare, CpuListError::NoTopology(pos("node:0", 2, 2))),
        ("node:2", &host, CpuListError::UnknownNode { pos: pos("node:2", 1, 0), node: 2, nr_nodes: 2 }),
        ("nodes:1-3", &host, CpuListError::UnknownNode { pos: pos("nodes:1-3", 1, 0), node: 2, nr_nodes: 2 }),
        ("0-3,8", &host, CpuListError::BeyondHost { pos: pos("8", 2, 4), cpus: CpuMap::from_iter([8]), host_cpus: 8 }),
        (
            "6-10",
            &host,
            CpuListError::BeyondHost { pos: pos("6-10", 1, 0), cpus: CpuMap::from_iter(8..=10), host_cpus: 8 },
        ),
        ("^9", &host, CpuListError::BeyondHost { pos: pos("^9", 1, 0), cpus: CpuMap::from_iter([9]), host_cpus: 8 }),
    ];
    for (list, ctx, want) in cases {
        assert_eq!(ctx.parse(list), Err(want), "{list:?}");
    }
}

#[test]
fn error_messages_say_what_is_allowed() {
    let host = CpuListContext::new().host_cpus(8);
    let msg = |list: &str| host.parse(list).unwrap_err().to_string();
    assert_eq!(msg("0-3,8-9"), "cpu-list token 2 \"8-9\" (byte 4): CPUs 8-9 beyond the host, which has CPUs 0-7");
    assert_eq!(msg("5-3"), "cpu-list token 1 \"5-3\" (byte 0): range end 3 is below its start 5");
    assert_eq!(msg("1,,2"), "cpu-list token 2 \"\" (byte 2): empty entry (expected N, N-M, ^N, all or node:N)");
    assert!(msg("^all").contains("\"^\" cannot be combined with \"all\""));
    assert!(msg("node:0").contains("NUMA topology"));
}

#[test]
fn from_str_has_no_host_context() {
    assert_eq!("0-3,8,10-11".parse::<CpuMap>().unwrap().count(), 7);
    assert!(matches!("all".parse::<CpuMap>(), Err(CpuListError::AllWithoutHost(_))));
    assert!("4095".parse::<CpuMap>().is_ok());
}

#[test]
fn display_is_canonical_and_round_trips() {
    let cases: &[(&[usize], &str)] = &[
        (&[], ""),
        (&[0], "0"),
        (&[0, 1, 2, 3, 8, 10, 11], "0-3,8,10-11"),
        (&[5, 7, 9], "5,7,9"),
        (&[63, 64], "63-64"),
        (&[0, 127, 128, 129, 4095], "0,127-129,4095"),
    ];
    for (set, text) in cases {
        let map = CpuMap::from_iter(set.iter().copied());
        assert_eq!(map.to_string(), *text);
        assert_eq!(text.parse::<CpuMap>().unwrap(), map);
    }
    // Round trip on pseudo-random maps.
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let map: CpuMap = (0..200).filter(|i| (x.rotate_left(*i as u32 % 64) ^ (*i as u64 * 31)) % 3 == 0).collect();
        let text = map.to_string();
        assert_eq!(text.parse::<CpuMap>().unwrap(), map, "{text}");
        assert_eq!(CpuListContext::new().host_cpus(200).parse(&text).unwrap(), map);
    }
}
