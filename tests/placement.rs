//! Placement policy: libvirt's rules between `<vcpu cpuset>`, `<vcpupin>`,
//! `<emulatorpin>` and `placement`, on three host topologies, from XML and the builder,
//! across hotplug, and every error with the element it names.

use std::collections::BTreeMap;

use xenvcpu::cpumap::{CpuListError, CpuMap, TokenPos};
use xenvcpu::hypervisor::{CpuTopology, PhysInfo};
use xenvcpu::placement::Source::{
    AdvisoryNodeset as Adv, AllCpus as All, Emulatorpin as Emu, VcpuCpuset as Def, Vcpupin as Pin,
};
use xenvcpu::placement::{LivePlacement, Placement, PlacementError, PlacementMode, Source, MAX_VCPUS};
use xenvcpu::{HostInfo, VcpuId, VcpuSet};

// ---------------------------------------------------------------------------------------
// Hosts

/// A host of `node_of.len()` CPUs; `node_of[cpu]` is its node, `None` if it is offline.
fn host(node_of: &[Option<u32>]) -> HostInfo {
    let cpus: Vec<CpuTopology> = node_of
        .iter()
        .enumerate()
        .map(|(cpu, node)| match node {
            Some(node) => CpuTopology { core: Some(cpu as u32), socket: Some(*node), node: Some(*node) },
            None => CpuTopology::default(),
        })
        .collect();
    let online = node_of.iter().filter(|n| n.is_some()).count() as u32;
    let max_node = node_of.iter().flatten().copied().max().unwrap_or(0);
    let online_cpus = node_of.iter().enumerate().filter(|(_, n)| n.is_some()).map(|(cpu, _)| cpu).collect();
    HostInfo {
        phys: PhysInfo {
            threads_per_core: 1,
            cores_per_socket: online / (max_node + 1),
            nr_cpus: online,
            max_cpu_id: node_of.len() as u32 - 1,
            nr_nodes: max_node + 1,
            max_node_id: max_node,
            cpu_khz: 2_000_000,
        },
        cpus,
        online: online_cpus,
    }
}

/// (a) 8 CPUs, one node.
fn host_a() -> HostInfo {
    host(&[Some(0); 8])
}

/// (b) 8 CPUs, two nodes: 0-3 and 4-7.
fn host_b() -> HostInfo {
    host(&[Some(0), Some(0), Some(0), Some(0), Some(1), Some(1), Some(1), Some(1)])
}

/// (c) 16 CPUs, two nodes (0-7, 8-15), CPUs 6 and 14 offline.
fn host_c() -> HostInfo {
    let nodes: Vec<Option<u32>> =
        (0..16u32).map(|cpu| if cpu == 6 || cpu == 14 { None } else { Some(cpu / 8) }).collect();
    host(&nodes)
}

#[test]
fn the_three_hosts_are_what_the_cases_assume() {
    let (a, b, c) = (host_a(), host_b(), host_c());
    assert_eq!((a.nr_cpus(), a.node_cpus()), (8, vec![map("0-7")]));
    assert_eq!((b.nr_cpus(), b.node_cpus()), (8, vec![map("0-3"), map("4-7")]));
    assert_eq!((c.nr_cpus(), c.node_cpus()), (16, vec![map("0-5,7"), map("8-13,15")]));
    assert_eq!(c.online_cpus(), map("0-5,7-13,15"));
}

// ---------------------------------------------------------------------------------------
// Helpers

fn map(list: &str) -> CpuMap {
    list.parse().unwrap_or_else(|e| panic!("{list:?}: {e}"))
}

fn vset(list: &str) -> VcpuSet {
    list.parse().unwrap()
}

fn tok(token: &str, index: usize, offset: usize) -> TokenPos {
    TokenPos { token: token.to_owned(), index, offset }
}

fn pins(entries: &[(u32, &str)]) -> BTreeMap<u32, String> {
    entries.iter().map(|(v, c)| (*v, (*c).to_owned())).collect()
}

/// What a resolution should give: every vCPU's map and source, then the emulator's.
enum Want {
    Maps(&'static [(&'static str, Source)], (&'static str, Source)),
    /// The exact error, and words its message must contain.
    Err(PlacementError, &'static [&'static str]),
}

struct Case {
    name: &'static str,
    host: HostInfo,
    placement: Placement,
    nodeset: Option<&'static str>,
    want: Want,
}

fn case(name: &'static str, host: HostInfo, placement: Placement, nodeset: Option<&'static str>, want: Want) -> Case {
    Case { name, host, placement, nodeset, want }
}

fn run(cases: Vec<Case>) {
    for Case { name, host, placement, nodeset, want } in cases {
        let nodeset = nodeset.map(map);
        let got = placement.resolve(&host, nodeset.as_ref());
        match want {
            Want::Maps(vcpus, (emu_cpus, emu_source)) => {
                let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                let want_vcpus: Vec<(u32, CpuMap, Source)> =
                    vcpus.iter().enumerate().map(|(v, (cpus, src))| (v as u32, map(cpus), *src)).collect();
                let got_vcpus: Vec<(u32, CpuMap, Source)> =
                    got.vcpus.iter().map(|v| (v.vcpu.get(), v.cpus.clone(), v.source)).collect();
                assert_eq!(got_vcpus, want_vcpus, "{name}: vCPUs");
                assert_eq!(got.emulator, (map(emu_cpus), emu_source), "{name}: emulator");
            }
            Want::Err(err, words) => {
                let got = got.expect_err(name);
                assert_eq!(got, err, "{name}");
                let msg = got.to_string();
                for word in words {
                    assert!(msg.contains(word), "{name}: message {msg:?} does not contain {word:?}");
                }
            }
        }
    }
}

fn b(max: u32) -> xenvcpu::placement::PlacementBuilder {
    Placement::builder(max)
}

// ---------------------------------------------------------------------------------------
// Resolution: the inheritance rules

#[test]
fn static_inheritance_on_one_node_host() {
    run(vec![
        case(
            "none: all host CPUs",
            host_a(),
            b(2).build().unwrap(),
            None,
            Want::Maps(&[("0-7", All), ("0-7", All)], ("0-7", All)),
        ),
        case(
            "<vcpu cpuset> is every vCPU's and the emulator's default",
            host_a(),
            b(3).cpuset("1-3").build().unwrap(),
            None,
            Want::Maps(&[("1-3", Def), ("1-3", Def), ("1-3", Def)], ("1-3", Def)),
        ),
        case(
            "cpuset + vcpupin + emulatorpin",
            host_a(),
            b(4).cpuset("0-3").vcpupin(1, "4").vcpupin(3, "5-6").emulatorpin("7").build().unwrap(),
            None,
            Want::Maps(&[("0-3", Def), ("4", Pin), ("0-3", Def), ("5-6", Pin)], ("7", Emu)),
        ),
        case(
            "only vcpupin: the others and the emulator get all CPUs",
            host_a(),
            b(3).vcpupin(2, "7").build().unwrap(),
            None,
            Want::Maps(&[("0-7", All), ("0-7", All), ("7", Pin)], ("0-7", All)),
        ),
        case(
            "only emulatorpin: the vCPUs get all CPUs",
            host_a(),
            b(2).emulatorpin("0").build().unwrap(),
            None,
            Want::Maps(&[("0-7", All), ("0-7", All)], ("0", Emu)),
        ),
        case(
            "cpuset + emulatorpin",
            host_a(),
            b(2).cpuset("2-5").emulatorpin("6-7").build().unwrap(),
            None,
            Want::Maps(&[("2-5", Def), ("2-5", Def)], ("6-7", Emu)),
        ),
        case(
            "every vCPU pinned: the emulator still inherits <vcpu cpuset>",
            host_a(),
            b(2).cpuset("0-1").vcpupin(0, "2").vcpupin(1, "3").build().unwrap(),
            None,
            Want::Maps(&[("2", Pin), ("3", Pin)], ("0-1", Def)),
        ),
        case(
            "cpuset + vcpupin without emulatorpin",
            host_a(),
            b(2).cpuset("4-7").vcpupin(0, "0").build().unwrap(),
            None,
            Want::Maps(&[("0", Pin), ("4-7", Def)], ("4-7", Def)),
        ),
        case(
            "cpu-list syntax: all, negation, node",
            host_a(),
            b(3).cpuset("all,^0").vcpupin(1, "1-4,^3,6").emulatorpin("node:0,^7").build().unwrap(),
            None,
            Want::Maps(&[("1-7", Def), ("1-2,4,6", Pin), ("1-7", Def)], ("0-6", Emu)),
        ),
        case(
            "vCPUs offline at start are resolved too",
            host_a(),
            b(3).cpuset("5").vcpupin(2, "6").current(1).build().unwrap(),
            None,
            Want::Maps(&[("5", Def), ("5", Def), ("6", Pin)], ("5", Def)),
        ),
        case(
            "a nodeset is ignored with placement='static'",
            host_a(),
            b(1).cpuset("2").build().unwrap(),
            Some("0"),
            Want::Maps(&[("2", Def)], ("2", Def)),
        ),
    ]);
}

#[test]
fn numa_cpusets_on_two_node_host() {
    run(vec![
        case(
            "node:1 as <vcpu cpuset>",
            host_b(),
            b(2).cpuset("node:1").build().unwrap(),
            None,
            Want::Maps(&[("4-7", Def), ("4-7", Def)], ("4-7", Def)),
        ),
        case(
            "node syntax in vcpupin and emulatorpin",
            host_b(),
            b(3).cpuset("all,^node:0").vcpupin(0, "nodes:0-1,^3").emulatorpin("node:0").build().unwrap(),
            None,
            Want::Maps(&[("0-2,4-7", Pin), ("4-7", Def), ("4-7", Def)], ("0-3", Emu)),
        ),
        case("none", host_b(), b(1).build().unwrap(), None, Want::Maps(&[("0-7", All)], ("0-7", All))),
    ]);
}

#[test]
fn offline_host_cpus() {
    run(vec![
        case(
            "none: all CPU ids, offline ones included",
            host_c(),
            b(2).build().unwrap(),
            None,
            Want::Maps(&[("0-15", All), ("0-15", All)], ("0-15", All)),
        ),
        case(
            "node:0 holds the node's online CPUs",
            host_c(),
            b(1).cpuset("node:0").build().unwrap(),
            None,
            Want::Maps(&[("0-5,7", Def)], ("0-5,7", Def)),
        ),
        case(
            "cpuset + vcpupin + emulatorpin with offline CPUs kept as written",
            host_c(),
            b(3).cpuset("0-7").vcpupin(2, "8-15").emulatorpin("14-15").build().unwrap(),
            None,
            Want::Maps(&[("0-7", Def), ("0-7", Def), ("8-15", Pin)], ("14-15", Emu)),
        ),
        case(
            "all as written",
            host_c(),
            b(1).vcpupin(0, "all").build().unwrap(),
            None,
            Want::Maps(&[("0-15", Pin)], ("0-15", All)),
        ),
    ]);
}

#[test]
fn placement_auto_uses_the_advisory_nodeset() {
    run(vec![
        case(
            "auto, one node: <vcpu cpuset> ignored",
            host_a(),
            b(2).auto().cpuset("1").build().unwrap(),
            Some("0"),
            Want::Maps(&[("0-7", Adv), ("0-7", Adv)], ("0-7", Adv)),
        ),
        case(
            "auto: an invalid <vcpu cpuset> is ignored too",
            host_a(),
            b(1).auto().cpuset("garbage,99").build().unwrap(),
            Some("0"),
            Want::Maps(&[("0-7", Adv)], ("0-7", Adv)),
        ),
        case(
            "auto, node 1",
            host_b(),
            b(3).auto().build().unwrap(),
            Some("1"),
            Want::Maps(&[("4-7", Adv), ("4-7", Adv), ("4-7", Adv)], ("4-7", Adv)),
        ),
        case(
            "auto + vcpupin: the pin wins for its vCPU",
            host_b(),
            b(3).auto().cpuset("0-1").vcpupin(0, "0").build().unwrap(),
            Some("1"),
            Want::Maps(&[("0", Pin), ("4-7", Adv), ("4-7", Adv)], ("4-7", Adv)),
        ),
        case(
            "auto, both nodes",
            host_b(),
            b(1).auto().build().unwrap(),
            Some("0-1"),
            Want::Maps(&[("0-7", Adv)], ("0-7", Adv)),
        ),
        case(
            "auto with offline CPUs: the nodes' online CPUs",
            host_c(),
            b(2).auto().build().unwrap(),
            Some("1"),
            Want::Maps(&[("8-13,15", Adv), ("8-13,15", Adv)], ("8-13,15", Adv)),
        ),
        case(
            "auto, two nodes, vcpupin naming an offline CPU beside an online one",
            host_c(),
            b(2).auto().vcpupin(1, "6-7").build().unwrap(),
            Some("0-1"),
            Want::Maps(&[("0-5,7-13,15", Adv), ("6-7", Pin)], ("0-5,7-13,15", Adv)),
        ),
    ]);
}

// ---------------------------------------------------------------------------------------
// Resolution: errors

#[test]
fn auto_errors() {
    // Built by hand: the builder and the parser refuse auto + emulatorpin already.
    let mut auto_emu = b(2).emulatorpin("0").build().unwrap();
    auto_emu.mode = PlacementMode::Auto;
    run(vec![
        case(
            "auto + emulatorpin",
            host_b(),
            auto_emu,
            Some("0"),
            Want::Err(PlacementError::AutoWithEmulatorpin, &["placement='auto'", "<emulatorpin>"]),
        ),
        case(
            "auto without nodeset",
            host_b(),
            b(2).auto().build().unwrap(),
            None,
            Want::Err(PlacementError::AutoWithoutNodeset, &["placement='auto'", "nodeset"]),
        ),
        case(
            "auto with an empty nodeset",
            host_b(),
            b(2).auto().build().unwrap(),
            Some(""),
            Want::Err(PlacementError::EmptyNodeset, &["nodeset is empty"]),
        ),
        case(
            "auto with node 2 on a two-node host",
            host_b(),
            b(2).auto().build().unwrap(),
            Some("1-2"),
            Want::Err(PlacementError::UnknownNode { node: 2, nr_nodes: 2 }, &["node 2", "nodes 0-1"]),
        ),
        case(
            "auto with node 1 on a one-node host",
            host_a(),
            b(2).auto().build().unwrap(),
            Some("1"),
            Want::Err(PlacementError::UnknownNode { node: 1, nr_nodes: 1 }, &["node 1", "node 0 only"]),
        ),
        case(
            "auto with a node whose CPUs are all offline",
            // Node 0's CPUs (0-3) are offline; node 1 has 4-7.
            host(&[None, None, None, None, Some(1), Some(1), Some(1), Some(1)]),
            b(1).auto().build().unwrap(),
            Some("0"),
            Want::Err(PlacementError::NodesetWithoutCpus { nodeset: map("0") }, &["nodeset 0", "no online CPU"]),
        ),
    ]);
}

#[test]
fn cpuset_errors_name_the_element_and_the_cpus() {
    let beyond = |token: &str, offset: usize, index: usize, cpus: &str, host_cpus: usize| CpuListError::BeyondHost {
        pos: tok(token, index, offset),
        cpus: map(cpus),
        host_cpus,
    };
    let cpuset_err =
        |element: &str, source: CpuListError| PlacementError::Cpuset { element: element.to_owned(), source };
    let empty = |element: &str, cpuset: &str| PlacementError::EmptyCpuset {
        element: element.to_owned(),
        cpuset: cpuset.to_owned(),
    };
    run(vec![
        case(
            "CPU 8 beyond an 8-CPU host in <vcpu cpuset>",
            host_a(),
            b(2).cpuset("0-8").build().unwrap(),
            None,
            Want::Err(cpuset_err("<vcpu>", beyond("0-8", 0, 1, "8", 8)), &["<vcpu>", "CPU 8 beyond the host", "0-7"]),
        ),
        case(
            "CPUs beyond the host in a vcpupin",
            host_b(),
            b(3).cpuset("0-3").vcpupin(2, "1,8-9").build().unwrap(),
            None,
            Want::Err(
                cpuset_err("<vcpupin vcpu='2'>", beyond("8-9", 2, 2, "8-9", 8)),
                &["<vcpupin vcpu='2'>", "CPUs 8-9 beyond the host"],
            ),
        ),
        case(
            "CPU beyond the host in emulatorpin",
            host_a(),
            b(1).emulatorpin("3,8").build().unwrap(),
            None,
            Want::Err(cpuset_err("<emulatorpin>", beyond("8", 2, 2, "8", 8)), &["<emulatorpin>", "CPU 8"]),
        ),
        case(
            "CPU 16 beyond a 16-CPU host",
            host_c(),
            b(1).cpuset("0-16").build().unwrap(),
            None,
            Want::Err(cpuset_err("<vcpu>", beyond("0-16", 0, 1, "16", 16)), &["<vcpu>", "CPU 16", "0-15"]),
        ),
        case(
            "an unused <vcpu cpuset> is still checked",
            host_a(),
            b(1).cpuset("9").vcpupin(0, "1").emulatorpin("1").build().unwrap(),
            None,
            Want::Err(cpuset_err("<vcpu>", beyond("9", 0, 1, "9", 8)), &["<vcpu>", "CPU 9"]),
        ),
        case(
            "empty <vcpu cpuset> 0,^0",
            host_a(),
            b(2).cpuset("0,^0").build().unwrap(),
            None,
            Want::Err(empty("<vcpu>", "0,^0"), &["<vcpu>", "\"0,^0\"", "selects no CPU"]),
        ),
        case(
            "empty vcpupin",
            host_a(),
            b(2).vcpupin(1, "0,^0").build().unwrap(),
            None,
            Want::Err(empty("<vcpupin vcpu='1'>", "0,^0"), &["<vcpupin vcpu='1'>", "selects no CPU"]),
        ),
        case(
            "empty string as emulatorpin",
            host_a(),
            b(2).emulatorpin("").build().unwrap(),
            None,
            Want::Err(empty("<emulatorpin>", ""), &["<emulatorpin>", "selects no CPU"]),
        ),
        case(
            "^node:0 alone selects nothing",
            host_b(),
            b(1).cpuset("^node:0").build().unwrap(),
            None,
            Want::Err(empty("<vcpu>", "^node:0"), &["<vcpu>"]),
        ),
        case(
            "junk in a vcpupin",
            host_a(),
            b(1).vcpupin(0, "0-x").build().unwrap(),
            None,
            Want::Err(
                cpuset_err("<vcpupin vcpu='0'>", CpuListError::Junk(tok("0-x", 1, 0))),
                &["<vcpupin vcpu='0'>", "\"0-x\""],
            ),
        ),
        case(
            "node:1 on a one-node host",
            host_a(),
            b(1).cpuset("node:1").build().unwrap(),
            None,
            Want::Err(
                cpuset_err("<vcpu>", CpuListError::UnknownNode { pos: tok("node:1", 1, 0), node: 1, nr_nodes: 1 }),
                &["<vcpu>", "node 1 does not exist"],
            ),
        ),
        case(
            "node:2 in a vcpupin on a two-node host",
            host_b(),
            b(2).vcpupin(1, "node:0,node:2").build().unwrap(),
            None,
            Want::Err(
                cpuset_err(
                    "<vcpupin vcpu='1'>",
                    CpuListError::UnknownNode { pos: tok("node:2", 2, 7), node: 2, nr_nodes: 2 },
                ),
                &["<vcpupin vcpu='1'>", "node 2"],
            ),
        ),
        case(
            "only offline CPUs in a vcpupin",
            host_c(),
            b(1).vcpupin(0, "6,14").build().unwrap(),
            None,
            Want::Err(
                PlacementError::NoOnlineCpu {
                    element: "<vcpupin vcpu='0'>".to_owned(),
                    cpuset: "6,14".to_owned(),
                    online: map("0-5,7-13,15"),
                },
                &["<vcpupin vcpu='0'>", "only offline CPUs"],
            ),
        ),
        case(
            "only an offline CPU in <vcpu cpuset>",
            host_c(),
            b(1).cpuset("14").build().unwrap(),
            None,
            Want::Err(
                PlacementError::NoOnlineCpu {
                    element: "<vcpu>".to_owned(),
                    cpuset: "14".to_owned(),
                    online: map("0-5,7-13,15"),
                },
                &["<vcpu>", "\"14\""],
            ),
        ),
    ]);
}

#[test]
fn resolve_checks_a_placement_changed_by_hand() {
    let valid = b(2).cpuset("0").build().unwrap();
    let mut out_of_range = valid.clone();
    out_of_range.vcpupins.insert(5, "1".into());
    let mut zero = valid.clone();
    zero.max_vcpus = 0;
    let mut current = valid.clone();
    current.current = Some(3);
    let cases = [
        (out_of_range, PlacementError::VcpupinOutOfRange { vcpu: 5, max_vcpus: 2 }),
        (zero, PlacementError::InvalidVcpuCount { value: "0".into() }),
        (current, PlacementError::InvalidCurrent { value: "3".into(), max_vcpus: 2 }),
    ];
    for (placement, want) in cases {
        assert_eq!(placement.resolve(&host_a(), None), Err(want));
    }
}

// ---------------------------------------------------------------------------------------
// Builder

#[test]
fn builder_checks() {
    let cases: Vec<(&str, Result<Placement, PlacementError>, PlacementError)> = vec![
        ("zero vCPUs", b(0).build(), PlacementError::InvalidVcpuCount { value: "0".into() }),
        (
            "too many vCPUs",
            b(MAX_VCPUS + 1).build(),
            PlacementError::InvalidVcpuCount { value: (MAX_VCPUS + 1).to_string() },
        ),
        ("current 0", b(2).current(0).build(), PlacementError::InvalidCurrent { value: "0".into(), max_vcpus: 2 }),
        ("current > max", b(2).current(3).build(), PlacementError::InvalidCurrent { value: "3".into(), max_vcpus: 2 }),
        (
            "vcpupin out of range",
            b(4).vcpupin(1, "0").vcpupin(4, "1").build(),
            PlacementError::VcpupinOutOfRange { vcpu: 4, max_vcpus: 4 },
        ),
        (
            "duplicate vcpupin",
            b(4).vcpupin(1, "0").vcpupin(1, "1").build(),
            PlacementError::DuplicateVcpupin { vcpu: 1 },
        ),
        (
            "two emulatorpins",
            b(1).emulatorpin("0").emulatorpin("1").build(),
            PlacementError::DuplicateElement { element: "<emulatorpin>".into() },
        ),
        ("auto + emulatorpin", b(1).emulatorpin("0").auto().build(), PlacementError::AutoWithEmulatorpin),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, Err(want), "{name}");
    }

    let built = b(4).cpuset("0-3").vcpupin(1, "2").vcpupin(3, "node:0").emulatorpin("1").current(2).build().unwrap();
    assert_eq!(
        built,
        Placement {
            max_vcpus: 4,
            current: Some(2),
            mode: PlacementMode::Static,
            cpuset: Some("0-3".into()),
            vcpupins: pins(&[(1, "2"), (3, "node:0")]),
            emulatorpin: Some("1".into()),
        }
    );
    assert_eq!(built.online_at_start(), 2);
    assert_eq!(b(3).build().unwrap().online_at_start(), 3);
    assert_eq!(b(1).auto().mode(PlacementMode::Static).build().unwrap().mode, PlacementMode::Static);
    assert_eq!(b(MAX_VCPUS).build().unwrap().max_vcpus, MAX_VCPUS);
}

#[test]
fn placement_mode_strings() {
    assert_eq!("static".parse::<PlacementMode>(), Ok(PlacementMode::Static));
    assert_eq!("auto".parse::<PlacementMode>(), Ok(PlacementMode::Auto));
    assert_eq!("Auto".parse::<PlacementMode>(), Err(PlacementError::UnknownPlacement { value: "Auto".into() }));
    assert_eq!(PlacementMode::Auto.to_string(), "auto");
    assert_eq!(PlacementMode::default(), PlacementMode::Static);
}

// ---------------------------------------------------------------------------------------
// XML

#[test]
fn xml_accepted() {
    let p = |max: u32| Placement::builder(max).build().unwrap();
    let cases: Vec<(&str, &str, Placement)> = vec![
        ("bare <vcpu>", "<vcpu>4</vcpu>", p(4)),
        ("whitespace around the count", "<vcpu>\n  2 \n</vcpu>", p(2)),
        ("comment in the count", "<vcpu><!-- max -->3</vcpu>", p(3)),
        ("explicit static", "<vcpu placement='static'>1</vcpu>", p(1)),
        ("auto", "<vcpu placement='auto'>2</vcpu>", Placement { mode: PlacementMode::Auto, ..p(2) }),
        (
            "every attribute, fragment of two elements",
            "<vcpu placement='static' cpuset='1-4,^3,6' current='2'>4</vcpu>\
             <cputune><vcpupin vcpu='1' cpuset='2'/><emulatorpin cpuset='0-1'/></cputune>",
            Placement {
                current: Some(2),
                cpuset: Some("1-4,^3,6".into()),
                vcpupins: pins(&[(1, "2")]),
                emulatorpin: Some("0-1".into()),
                ..p(4)
            },
        ),
        (
            "cputune before vcpu, comments and blank lines between",
            "\n<!-- pins -->\n<cputune>\n  <vcpupin vcpu='3' cpuset='7'/>\n  <vcpupin vcpu=\"0\" cpuset=\"node:0\"/>\n</cputune>\n\n<vcpu>4</vcpu>\n",
            Placement { vcpupins: pins(&[(0, "node:0"), (3, "7")]), ..p(4) },
        ),
        (
            "other cputune children ignored",
            "<vcpu>2</vcpu><cputune><shares>2048</shares><vcpupin vcpu='1' cpuset='3'/>\
             <iothreadpin iothread='1' cpuset='5'/><vcpusched vcpus='0' scheduler='fifo'/></cputune>",
            Placement { vcpupins: pins(&[(1, "3")]), ..p(2) },
        ),
        (
            "only <vcpu> at the top level counts, not <vcpus><vcpu>",
            "<domain><vcpu current='1'>2</vcpu><vcpus><vcpu id='0' enabled='yes'/><vcpu id='1' enabled='no'/></vcpus></domain>",
            Placement { current: Some(1), ..p(2) },
        ),
        (
            "a document with a declaration",
            "<?xml version='1.0' encoding='UTF-8'?>\n<domain type='xen'><vcpu cpuset='0'>1</vcpu></domain>",
            Placement { cpuset: Some("0".into()), ..p(1) },
        ),
        ("empty cputune", "<vcpu>1</vcpu><cputune/>", p(1)),
        ("cpusets are kept as written", "<vcpu cpuset=' 0 , 2 '>1</vcpu>", Placement { cpuset: Some(" 0 , 2 ".into()), ..p(1) }),
    ];
    for (name, xml, want) in cases {
        assert_eq!(Placement::from_xml(xml), Ok(want), "{name}");
    }
}

#[test]
fn xml_errors() {
    let xml_err = |line: u32, column: u32, message: &str| PlacementError::Xml { line, column, message: message.into() };
    let missing = |element: &str, attribute: &'static str| PlacementError::MissingAttribute {
        element: element.into(),
        attribute,
    };
    let dup = |element: &str| PlacementError::DuplicateElement { element: element.into() };
    let cases: Vec<(&str, &str, PlacementError, &[&str])> = vec![
        // Malformed XML, with the position in the text as given (fragments are wrapped
        // for parsing, which must not show).
        ("empty input", "", xml_err(1, 1, "the document does not have a root node"), &["line 1, column 1"]),
        (
            "mismatched close tag",
            "<vcpu>4</vcpux>",
            xml_err(1, 8, "expected 'vcpu' tag, not 'vcpux'"),
            &["line 1, column 8", "'vcpux'"],
        ),
        (
            "mismatched close tag in a fragment, second line",
            "<vcpu>4</vcpu>\n<cputune><vcpupin vcpu='0' cpuset='1'></cputune>",
            xml_err(2, 39, "expected 'vcpupin' tag, not 'cputune'"),
            &["line 2, column 39"],
        ),
        (
            "mismatched close tag in a fragment, first line",
            "<vcpu>4</vcpu><cputune><vcpupin vcpu='0' cpuset='1'></cputune>",
            xml_err(1, 53, "expected 'vcpupin' tag, not 'cputune'"),
            &["line 1, column 53"],
        ),
        (
            "unclosed element in a fragment",
            "<vcpu>4</vcpu><cputune>",
            xml_err(1, 24, "element 'cputune' is never closed"),
            &["'cputune' is never closed"],
        ),
        (
            "close tag without an open tag in a fragment",
            "<vcpu>1</vcpu>\n</cputune>",
            xml_err(2, 1, "close tag 'cputune' has no open tag"),
            &["line 2, column 1"],
        ),
        (
            "unclosed document",
            "<domain>\n<vcpu>2</vcpu>",
            xml_err(2, 15, "the root node was opened but never closed"),
            &["line 2, column 15"],
        ),
        (
            "duplicate attribute",
            "<vcpu cpuset='1' cpuset='2'>2</vcpu>",
            xml_err(1, 18, "attribute 'cpuset' is already defined"),
            &["line 1, column 18", "cpuset"],
        ),
        (
            "a second root after a declaration",
            "<?xml version='1.0'?><vcpu>1</vcpu><cputune/>",
            xml_err(1, 36, "unknown token"),
            &["line 1, column 36"],
        ),
        ("unescaped <", "<vcpu cpuset='<1'>1</vcpu>", xml_err(1, 15, "expected ''' not '<'"), &["line 1, column 15"]),
        // The elements.
        ("no <vcpu>", "<domain type='xen'><name>x</name><cputune/></domain>", PlacementError::MissingVcpu, &["<vcpu>"]),
        ("only <cputune>", "<cputune><emulatorpin cpuset='0'/></cputune>", PlacementError::MissingVcpu, &["<vcpu>"]),
        ("two <vcpu>", "<vcpu>1</vcpu><vcpu>2</vcpu>", dup("<vcpu>"), &["<vcpu>", "at most one"]),
        ("two <cputune>", "<vcpu>1</vcpu><cputune/><cputune/>", dup("<cputune>"), &["<cputune>"]),
        (
            "two <emulatorpin>",
            "<vcpu>1</vcpu><cputune><emulatorpin cpuset='0'/><emulatorpin cpuset='1'/></cputune>",
            dup("<emulatorpin>"),
            &["<emulatorpin>"],
        ),
        (
            "count not a number",
            "<vcpu>two</vcpu>",
            PlacementError::InvalidVcpuCount { value: "two".into() },
            &["<vcpu>", "\"two\""],
        ),
        ("count zero", "<vcpu>0</vcpu>", PlacementError::InvalidVcpuCount { value: "0".into() }, &["from 1 to 16384"]),
        ("count empty", "<vcpu/>", PlacementError::InvalidVcpuCount { value: "".into() }, &["<vcpu>"]),
        ("count negative", "<vcpu>-1</vcpu>", PlacementError::InvalidVcpuCount { value: "-1".into() }, &["<vcpu>"]),
        ("count with sign", "<vcpu>+2</vcpu>", PlacementError::InvalidVcpuCount { value: "+2".into() }, &["<vcpu>"]),
        (
            "count too large",
            "<vcpu>16385</vcpu>",
            PlacementError::InvalidVcpuCount { value: "16385".into() },
            &["16385"],
        ),
        (
            "count beyond u32",
            "<vcpu>4294967296</vcpu>",
            PlacementError::InvalidVcpuCount { value: "4294967296".into() },
            &["<vcpu>"],
        ),
        (
            "current above the maximum",
            "<vcpu current='5'>4</vcpu>",
            PlacementError::InvalidCurrent { value: "5".into(), max_vcpus: 4 },
            &["current=\"5\"", "1 to the maximum, 4"],
        ),
        (
            "current zero",
            "<vcpu current='0'>4</vcpu>",
            PlacementError::InvalidCurrent { value: "0".into(), max_vcpus: 4 },
            &["current"],
        ),
        (
            "current not a number",
            "<vcpu current='x'>4</vcpu>",
            PlacementError::InvalidCurrent { value: "x".into(), max_vcpus: 4 },
            &["current"],
        ),
        (
            "unknown placement",
            "<vcpu placement='dynamic'>4</vcpu>",
            PlacementError::UnknownPlacement { value: "dynamic".into() },
            &["\"dynamic\"", "'static' or 'auto'"],
        ),
        (
            "vcpupin without vcpu",
            "<vcpu>2</vcpu><cputune><vcpupin cpuset='1'/></cputune>",
            missing("<vcpupin>", "vcpu"),
            &["<vcpupin> has no vcpu attribute"],
        ),
        (
            "vcpupin without cpuset",
            "<vcpu>2</vcpu><cputune><vcpupin vcpu='1'/></cputune>",
            missing("<vcpupin vcpu='1'>", "cpuset"),
            &["<vcpupin vcpu='1'> has no cpuset attribute"],
        ),
        (
            "emulatorpin without cpuset",
            "<vcpu>2</vcpu><cputune><emulatorpin/></cputune>",
            missing("<emulatorpin>", "cpuset"),
            &["<emulatorpin> has no cpuset"],
        ),
        (
            "vcpupin vcpu not a number",
            "<vcpu>2</vcpu><cputune><vcpupin vcpu='one' cpuset='1'/></cputune>",
            PlacementError::InvalidVcpuId { element: "<vcpupin vcpu='one'>".into(), value: "one".into() },
            &["<vcpupin vcpu='one'>"],
        ),
        (
            "vcpupin vcpu out of range",
            "<vcpu>4</vcpu><cputune><vcpupin vcpu='4' cpuset='1'/></cputune>",
            PlacementError::VcpupinOutOfRange { vcpu: 4, max_vcpus: 4 },
            &["<vcpupin vcpu='4'>", "vCPUs are 0-3"],
        ),
        (
            "vcpupin out of range before the <vcpu> element",
            "<cputune><vcpupin vcpu='9' cpuset='1'/></cputune><vcpu>2</vcpu>",
            PlacementError::VcpupinOutOfRange { vcpu: 9, max_vcpus: 2 },
            &["<vcpupin vcpu='9'>", "0-1"],
        ),
        (
            "duplicate vcpupin",
            "<vcpu>4</vcpu><cputune><vcpupin vcpu='1' cpuset='1'/><vcpupin vcpu='01' cpuset='2'/></cputune>",
            PlacementError::DuplicateVcpupin { vcpu: 1 },
            &["vCPU 1", "<vcpupin vcpu='1'>"],
        ),
        (
            "auto + emulatorpin",
            "<vcpu placement='auto'>2</vcpu><cputune><emulatorpin cpuset='0'/></cputune>",
            PlacementError::AutoWithEmulatorpin,
            &["placement='auto'", "<emulatorpin>"],
        ),
    ];
    for (name, xml, want, words) in cases {
        let got = Placement::from_xml(xml).expect_err(name);
        assert_eq!(got, want, "{name}");
        let msg = got.to_string();
        for word in words {
            assert!(msg.contains(word), "{name}: message {msg:?} does not contain {word:?}");
        }
        assert!(!msg.contains("fragment"), "{name}: the synthetic root shows in {msg:?}");
    }
}

const REALISTIC_DOMAIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- A PV guest as virsh dumpxml prints it for the libxl driver. -->
<domain type='xen' id='7'>
  <name>web-01</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static' cpuset='node:0' current='3'>4</vcpu>
  <vcpus>
    <vcpu id='0' enabled='yes' hotpluggable='no'/>
    <vcpu id='1' enabled='yes' hotpluggable='yes'/>
    <vcpu id='2' enabled='yes' hotpluggable='yes'/>
    <vcpu id='3' enabled='no' hotpluggable='yes'/>
  </vcpus>
  <cputune>
    <shares>1024</shares>
    <vcpupin vcpu='3' cpuset='7'/>
    <vcpupin vcpu='1' cpuset='4-5'/>
    <emulatorpin cpuset='0'/>
  </cputune>
  <numatune>
    <memory mode='strict' nodeset='0'/>
  </numatune>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>/boot/vmlinuz</kernel>
    <cmdline>console=hvc0 root=/dev/xvda1</cmdline>
  </os>
  <clock offset='utc' adjustment='reset'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/xen/images/web-01.img'/>
      <target dev='xvda' bus='xen'/>
    </disk>
    <interface type='bridge'>
      <mac address='00:16:3e:5d:c7:9e'/>
      <source bridge='xenbr0'/>
      <script path='vif-bridge'/>
    </interface>
    <console type='pty'>
      <target type='xen' port='0'/>
    </console>
  </devices>
</domain>
"#;

#[test]
fn realistic_domain_document() {
    let placement = Placement::from_xml(REALISTIC_DOMAIN).unwrap();
    assert_eq!(
        placement,
        Placement {
            max_vcpus: 4,
            current: Some(3),
            mode: PlacementMode::Static,
            cpuset: Some("node:0".into()),
            vcpupins: pins(&[(1, "4-5"), (3, "7")]),
            emulatorpin: Some("0".into()),
        }
    );
    let resolved = placement.resolve(&host_b(), None).unwrap();
    assert_eq!(
        resolved.table(),
        "vCPU      CPUs  from\n\
         0         0-3   <vcpu cpuset>\n\
         1         4-5   <vcpupin>\n\
         2         0-3   <vcpu cpuset>\n\
         3         7     <vcpupin>\n\
         emulator  0     <emulatorpin>\n"
    );
    assert_eq!(resolved.to_string(), resolved.table());
    assert_eq!(resolved.vcpu(VcpuId(3)).map(|v| (v.cpus.clone(), v.source)), Some((map("7"), Pin)));
    assert_eq!(resolved.vcpu(VcpuId(4)), None);

    // On the 16-CPU host node 0 is 0-5,7 (CPU 6 is offline).
    let resolved = placement.resolve(&host_c(), None).unwrap();
    assert_eq!(resolved.vcpus[0].cpus, map("0-5,7"));
    assert_eq!(resolved.vcpus[2].cpus, map("0-5,7"));
    // And on the one-node host the pins still fit.
    let resolved = placement.resolve(&host_a(), None).unwrap();
    assert_eq!(resolved.vcpus[0].cpus, map("0-7"));
}

#[test]
fn table_of_defaults_and_auto() {
    let resolved = b(2).auto().vcpupin(1, "0-1").build().unwrap().resolve(&host_c(), Some(&map("1"))).unwrap();
    assert_eq!(
        resolved.table(),
        "vCPU      CPUs     from\n\
         0         8-13,15  advisory nodeset\n\
         1         0-1      <vcpupin>\n\
         emulator  8-13,15  advisory nodeset\n"
    );
    let resolved = b(1).build().unwrap().resolve(&host_c(), None).unwrap();
    assert_eq!(
        resolved.table(),
        "vCPU      CPUs  from\n0         0-15  all host CPUs\nemulator  0-15  all host CPUs\n"
    );
}

// ---------------------------------------------------------------------------------------
// Hotplug

enum Step {
    /// vCPUs go offline; the vCPUs whose pin was dropped.
    Offline(&'static str, &'static str),
    /// vCPUs come online; what each is pinned to.
    Online(&'static str, &'static [(u32, &'static str, Source)]),
}

fn hotplug(name: &str, host: &HostInfo, nodeset: Option<&str>, placement: Placement, steps: &[Step]) -> LivePlacement {
    let nodeset = nodeset.map(map);
    let mut live = LivePlacement::new(placement).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Offline(vcpus, dropped) => {
                let before = live.online().clone();
                let got = live.on_vcpus_offline(&vset(vcpus)).unwrap_or_else(|e| panic!("{name} step {i}: {e}"));
                assert_eq!(got, vset(dropped), "{name} step {i}: pins dropped");
                assert_eq!(*live.online(), before.difference(&vset(vcpus)), "{name} step {i}: online");
            }
            Step::Online(vcpus, want) => {
                let got = live
                    .on_vcpus_online(&vset(vcpus), host, nodeset.as_ref())
                    .unwrap_or_else(|e| panic!("{name} step {i}: {e}"));
                let got: Vec<(u32, CpuMap, Source)> =
                    got.into_iter().map(|v| (v.vcpu.get(), v.cpus, v.source)).collect();
                let want: Vec<(u32, CpuMap, Source)> = want.iter().map(|(v, c, s)| (*v, map(c), *s)).collect();
                assert_eq!(got, want, "{name} step {i}");
                assert!(vset(vcpus).is_subset(live.online()), "{name} step {i}: online");
            }
        }
    }
    live
}

#[test]
fn hotplug_rules() {
    use Step::{Offline, Online};

    // vCPUs 2 and 3 are offline at start and pinned in the configuration: they come
    // online with their pins. vCPU 3 then goes offline, loses its pin, and comes back on
    // <vcpu cpuset>.
    let live = hotplug(
        "pinned vCPUs offline at start",
        &host_a(),
        None,
        b(4).cpuset("0-1").vcpupin(2, "5").vcpupin(3, "6").current(2).build().unwrap(),
        &[
            Online("2-3", &[(2, "5", Pin), (3, "6", Pin)]),
            Offline("3", "3"),
            Online("3", &[(3, "0-1", Def)]),
            Offline("3", ""),
            Online("3", &[(3, "0-1", Def)]),
        ],
    );
    assert_eq!(live.placement().vcpupins, pins(&[(2, "5")]));
    assert_eq!(*live.online(), vset("0-3"));

    hotplug(
        "hotplugged vCPUs inherit <vcpu cpuset>",
        &host_b(),
        None,
        b(4).cpuset("node:1").current(1).build().unwrap(),
        &[Online("1-3", &[(1, "4-7", Def), (2, "4-7", Def), (3, "4-7", Def)])],
    );

    // Naming a vCPU that is already offline keeps its pin: it never took effect.
    let live = hotplug(
        "no cpuset: offline → online, unplug drops the pin, re-plug gets all CPUs",
        &host_c(),
        None,
        b(2).vcpupin(1, "8").current(1).build().unwrap(),
        &[Offline("1", ""), Online("1", &[(1, "8", Pin)]), Offline("1", "1"), Online("1", &[(1, "0-15", All)])],
    );
    assert!(live.placement().vcpupins.is_empty());

    let live = hotplug(
        "unplug of several vCPUs with and without pins; emulatorpin untouched",
        &host_a(),
        None,
        b(4).cpuset("7").vcpupin(0, "0").vcpupin(2, "2").vcpupin(3, "3").emulatorpin("6").build().unwrap(),
        &[
            Offline("1-3", "2-3"),
            Online("1-3", &[(1, "7", Def), (2, "7", Def), (3, "7", Def)]),
            Online("0", &[(0, "0", Pin)]),
        ],
    );
    assert_eq!(live.placement().emulatorpin.as_deref(), Some("6"));
    assert_eq!(live.clone().into_placement().vcpupins, pins(&[(0, "0")]));
    let resolved = live.placement().resolve(&host_a(), None).unwrap();
    assert_eq!(resolved.emulator, (map("6"), Emu));

    hotplug(
        "placement auto: a re-plugged vCPU gets the nodeset",
        &host_b(),
        Some("1"),
        b(3).auto().vcpupin(2, "0").build().unwrap(),
        &[Offline("2", "2"), Online("2", &[(2, "4-7", Adv)])],
    );

    hotplug(
        "online of an already online vCPU returns its placement",
        &host_a(),
        None,
        b(2).vcpupin(0, "3").build().unwrap(),
        &[Online("0-1", &[(0, "3", Pin), (1, "0-7", All)])],
    );
}

#[test]
fn hotplug_errors_change_nothing() {
    let config = b(4).cpuset("0-1").vcpupin(3, "2").current(2).build().unwrap();
    let mut live = LivePlacement::new(config.clone()).unwrap();
    let before = live.clone();

    assert_eq!(live.on_vcpus_offline(&vset("1,4-5")), Err(PlacementError::VcpuOutOfRange { vcpu: 4, max_vcpus: 4 }));
    assert_eq!(live, before);
    let err = live.on_vcpus_online(&vset("3,9"), &host_a(), None).unwrap_err();
    assert_eq!(err, PlacementError::VcpuOutOfRange { vcpu: 9, max_vcpus: 4 });
    assert!(err.to_string().contains("vCPU 9") && err.to_string().contains("0-3"), "{err}");
    assert_eq!(live, before);

    // A resolution error (here the vcpupin names a CPU the small host lacks).
    let small = host(&[Some(0), Some(0)]);
    let err = live.on_vcpus_online(&vset("3"), &small, None).unwrap_err();
    assert!(matches!(err, PlacementError::Cpuset { ref element, .. } if element == "<vcpupin vcpu='3'>"), "{err}");
    assert_eq!(live, before);

    // Auto without a nodeset.
    let mut auto = LivePlacement::new(b(2).auto().current(1).build().unwrap()).unwrap();
    assert_eq!(auto.on_vcpus_online(&vset("1"), &host_b(), None), Err(PlacementError::AutoWithoutNodeset));
    assert_eq!(*auto.online(), vset("0"));

    // Construction checks the placement and the online set.
    let mut bad = config.clone();
    bad.current = Some(0);
    assert_eq!(LivePlacement::new(bad), Err(PlacementError::InvalidCurrent { value: "0".into(), max_vcpus: 4 }));
    assert_eq!(
        LivePlacement::with_online(config.clone(), &vset("0,4")),
        Err(PlacementError::VcpuOutOfRange { vcpu: 4, max_vcpus: 4 })
    );
    let running = LivePlacement::with_online(config, &vset("0,3")).unwrap();
    assert_eq!(*running.online(), vset("0,3"));
}

#[test]
fn live_placement_starts_with_current_online() {
    let all = LivePlacement::new(b(3).build().unwrap()).unwrap();
    assert_eq!(*all.online(), vset("0-2"));
    let some = LivePlacement::new(b(3).current(1).build().unwrap()).unwrap();
    assert_eq!(*some.online(), vset("0"));
}

#[test]
fn errors_are_send_sync_static() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<PlacementError>();
    // The cpu-list error is kept as the source.
    let err = b(1).cpuset("0-8").build().unwrap().resolve(&host_a(), None).unwrap_err();
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.to_string().contains("CPU 8"));
}
