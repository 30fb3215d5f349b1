//! Fuzzes the libvirt XML reader (`Placement::from_xml`) and the resolution of what it
//! accepts against two small hosts.
//!
//! The first input byte chooses the mode: the rest of the input as raw (UTF-8) text, or
//! as the choices that fill a `<domain><vcpu …>N</vcpu><cputune><vcpupin …/>…</cputune>`
//! template, so that the fuzzer reaches the element and attribute checks behind the XML
//! parser. Invariants: nothing panics; an accepted placement passes `validate`, holds the
//! attribute values written into the template, and resolves (when it resolves) to one
//! non-empty map per vCPU within the host, with at least one online CPU, taken from the
//! source it names.
#![no_main]

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::{CpuTopology, PhysInfo};
use xenvcpu::placement::{Placement, PlacementMode, Source};
use xenvcpu::HostInfo;

/// A host of `node_of.len()` CPU ids; `node_of[cpu]` is the CPU's node, `None` if offline.
fn host(node_of: &[Option<u32>]) -> HostInfo {
    let cpus: Vec<CpuTopology> = node_of
        .iter()
        .enumerate()
        .map(|(cpu, node)| CpuTopology { core: node.map(|_| cpu as u32), socket: *node, node: *node })
        .collect();
    let online = node_of.iter().flatten().count() as u32;
    let max_node = node_of.iter().flatten().copied().max().unwrap_or(0);
    HostInfo {
        phys: PhysInfo {
            threads_per_core: 1,
            cores_per_socket: online / (max_node + 1),
            nr_cpus: online,
            max_cpu_id: node_of.len() as u32 - 1,
            nr_nodes: max_node + 1,
            max_node_id: max_node,
            cpu_khz: 1_000_000,
        },
        cpus,
        online: node_of.iter().enumerate().filter(|(_, node)| node.is_some()).map(|(cpu, _)| cpu).collect(),
    }
}

/// Escapes text for an attribute value in single quotes, or for element content.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;")
}

/// A short text: mostly a meaningful token, sometimes arbitrary.
fn number_text(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => String::new(),
        1 => "0".into(),
        2 => format!(" {} ", u.int_in_range(1..=20u32)?),
        3 => u.arbitrary::<u32>()?.to_string(),
        4 => "16385".into(),
        5 => format!("-{}", u.int_in_range(0..=3u32)?),
        6 => u.arbitrary::<String>()?,
        _ => u.int_in_range(1..=20u32)?.to_string(),
    })
}

/// A cpu-list, mostly made of valid tokens for hosts of up to 16 CPUs and 2 nodes.
fn cpu_list(u: &mut Unstructured<'_>) -> ArbResult<String> {
    if u.ratio(1, 10)? {
        return u.arbitrary::<String>();
    }
    let n = u.int_in_range(0..=4u8)?;
    let mut tokens = Vec::new();
    for _ in 0..n {
        let neg = if u.ratio(1, 4)? { "^" } else { "" };
        let a = u.int_in_range(0..=17u32)?;
        let b = u.int_in_range(0..=17u32)?;
        let token = match u.int_in_range(0..=5u8)? {
            0 => format!("{neg}{a}"),
            1 => format!("{neg}{a}-{b}"),
            2 => "all".to_owned(),
            3 => format!("{neg}node:{}", a % 3),
            4 => format!("{neg}nodes:{}-{}", a % 3, b % 3),
            _ => format!("{neg}{a}"),
        };
        tokens.push(token);
    }
    Ok(tokens.join(","))
}

/// The XML of the template, and the attribute values written into it.
struct Built {
    xml: String,
    cpuset: Option<String>,
    emulatorpin: Option<String>,
}

fn build(u: &mut Unstructured<'_>) -> ArbResult<Built> {
    let count = number_text(u)?;
    let mut vcpu_attrs = String::new();
    let placement = match u.int_in_range(0..=4u8)? {
        0 => Some("auto".to_owned()),
        1 => Some("static".to_owned()),
        2 => Some(u.arbitrary::<String>()?),
        _ => None,
    };
    if let Some(p) = &placement {
        vcpu_attrs.push_str(&format!(" placement='{}'", escape(p)));
    }
    let cpuset = if u.ratio(2, 3)? { Some(cpu_list(u)?) } else { None };
    if let Some(c) = &cpuset {
        vcpu_attrs.push_str(&format!(" cpuset='{}'", escape(c)));
    }
    if u.ratio(1, 3)? {
        vcpu_attrs.push_str(&format!(" current='{}'", escape(&number_text(u)?)));
    }
    let mut cputune = String::new();
    let pins = u.int_in_range(0..=6u8)?;
    for _ in 0..pins {
        cputune.push_str("<vcpupin");
        if !u.ratio(1, 20)? {
            let id = if u.ratio(1, 8)? { number_text(u)? } else { u.int_in_range(0..=9u32)?.to_string() };
            cputune.push_str(&format!(" vcpu='{}'", escape(&id)));
        }
        if !u.ratio(1, 20)? {
            cputune.push_str(&format!(" cpuset='{}'", escape(&cpu_list(u)?)));
        }
        cputune.push_str("/>");
    }
    let mut emulatorpin = if u.ratio(1, 4)? { Some(cpu_list(u)?) } else { None };
    if let Some(e) = &emulatorpin {
        cputune.push_str(&format!("<emulatorpin cpuset='{}'/>", escape(e)));
    }
    if u.ratio(1, 20)? {
        // A second <emulatorpin> (refused), or the only one.
        cputune.push_str("<emulatorpin cpuset='0'/>");
        emulatorpin.get_or_insert_with(|| "0".to_owned());
    }
    let vcpu = format!("<vcpu{vcpu_attrs}>{}</vcpu>", escape(&count));
    let tune = if u.ratio(1, 10)? {
        emulatorpin = None;
        String::new()
    } else {
        format!("<cputune>{cputune}</cputune>")
    };
    let extra = if u.ratio(1, 20)? { "<vcpu>1</vcpu>" } else { "" };
    let xml = match u.int_in_range(0..=3u8)? {
        0 => format!("{vcpu}{tune}{extra}"),
        1 => format!("<?xml version='1.0'?>\n<domain type='xen'><name>d</name>{vcpu}{tune}{extra}</domain>"),
        2 => format!("{tune}{extra}{vcpu}"),
        _ => format!("<domain type='xen'>\n  {vcpu}\n  {tune}{extra}\n</domain>"),
    };
    Ok(Built { xml, cpuset, emulatorpin })
}

fn check_resolved(placement: &Placement, host: &HostInfo, nodeset: Option<&CpuMap>) {
    let Ok(resolved) = placement.resolve(host, nodeset) else { return };
    let online = host.online_cpus();
    let check = |cpus: &CpuMap| {
        assert!(!cpus.is_empty());
        assert!(cpus.last().unwrap() < host.nr_cpus(), "{cpus} beyond a host of {}", host.nr_cpus());
        assert!(!cpus.intersection(&online).is_empty(), "{cpus} has no online CPU");
    };
    assert_eq!(resolved.vcpus.len(), placement.max_vcpus as usize);
    for (i, v) in resolved.vcpus.iter().enumerate() {
        assert_eq!(v.vcpu.index(), i);
        if placement.mode == PlacementMode::Static && placement.cpuset.is_none() && v.source == Source::AllCpus {
            assert_eq!(v.cpus, CpuMap::all(host.nr_cpus()));
        } else {
            check(&v.cpus);
        }
        let expected = match (placement.vcpupins.contains_key(&v.vcpu.get()), placement.mode, &placement.cpuset) {
            (true, _, _) => Source::Vcpupin,
            (false, PlacementMode::Auto, _) => Source::AdvisoryNodeset,
            (false, PlacementMode::Static, Some(_)) => Source::VcpuCpuset,
            (false, PlacementMode::Static, None) => Source::AllCpus,
        };
        assert_eq!(v.source, expected, "vCPU {i}");
    }
    if placement.emulatorpin.is_some() {
        assert_eq!(resolved.emulator.1, Source::Emulatorpin);
        check(&resolved.emulator.0);
    }
    let _ = resolved.table();
}

fn check(xml: &str, built: Option<&Built>, nodeset: &CpuMap) {
    let Ok(placement) = Placement::from_xml(xml) else { return };
    assert!(placement.validate().is_ok(), "{xml}");
    if let Some(built) = built {
        // roxmltree normalizes whitespace in attribute values; compare the others exactly.
        let plain = |s: &String| !s.contains(['\t', '\n', '\r']);
        if built.cpuset.as_ref().is_none_or(plain) {
            assert_eq!(placement.cpuset, built.cpuset, "{xml}");
        }
        if built.emulatorpin.as_ref().is_none_or(plain) {
            assert_eq!(placement.emulatorpin.is_some(), built.emulatorpin.is_some(), "{xml}");
        }
    }
    if placement.max_vcpus > 64 {
        // Resolution is linear in the vCPUs; the shape of the work is the same.
        return;
    }
    let small = host(&[Some(0); 4]);
    let nodes: Vec<Option<u32>> = (0..16u32).map(|c| if c == 6 || c == 14 { None } else { Some(c / 8) }).collect();
    let numa = host(&nodes);
    for h in [&small, &numa] {
        check_resolved(&placement, h, None);
        check_resolved(&placement, h, Some(nodeset));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut u = Unstructured::new(rest);
    if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return };
        check(text, None, &CpuMap::from_iter([0]));
    } else {
        let Ok(built) = build(&mut u) else { return };
        let nodeset: CpuMap = (0..3).filter(|n| mode & (2 << n) != 0).collect();
        check(&built.xml, Some(&built), &nodeset);
    }
});
