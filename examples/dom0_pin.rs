//! A dom0 tool: list a domain's vCPUs, pin them, and show the effective affinity Xen
//! wrote back (which drops offline CPUs, or CPUs outside the domain's cpupool).
//!
//! ```text
//! cargo run --example dom0_pin -- DOMAIN [HARD]      # on a Xen dom0, as root
//! cargo run --example dom0_pin -- --sim labguest 0-1 # against the simulated lab host
//! ```
//!
//! Every vCPU of DOMAIN gets hard affinity HARD (a cpu-list, default `0`) as one
//! operation: if any update fails, the vCPUs already changed are restored.

use xenvcpu::{AffinityRequest, Domain, Host, VcpuInfo};

/// One line per vCPU, like `xl vcpu-list`.
pub fn describe(v: &VcpuInfo) -> String {
    let cpu = v.cpu.map_or("-".to_string(), |c| c.to_string());
    format!("vCPU {:>2}  {:<8} cpu {:>2}  hard {:<8} soft {}", v.vcpu, format!("{:?}", v.state), cpu, v.hard, v.soft)
}

/// Lists the domain's vCPUs, pins every one to `hard`, and returns what was printed.
pub fn run(host: &Host, domain: &str, hard: &str) -> Result<Vec<String>, xenvcpu::Error> {
    let dom: Domain = match domain.parse() {
        Ok(id) => host.domain(id)?,
        Err(_) => host.domain_by_name(domain)?,
    };
    let mut out = vec![format!("domain {} ({} vCPUs)", dom.id(), dom.max_vcpus())];
    out.extend(dom.vcpus()?.iter().map(describe));
    let nodes = host.info()?.node_cpus();
    let map = host.cpu_list_context(&nodes).parse(hard)?;
    let req = AffinityRequest::hard(&map);
    for (vcpu, effective) in dom.pin(&dom.all_vcpus(), &req)? {
        let (dropped, _) = effective.dropped(&req);
        let got = effective.hard.map_or("-".to_string(), |m| m.to_string());
        if dropped.is_empty() {
            out.push(format!("pinned vCPU {vcpu}: effective hard affinity {got}"));
        } else {
            out.push(format!("pinned vCPU {vcpu}: effective hard affinity {got} (Xen dropped {dropped})"));
        }
    }
    Ok(out)
}

#[allow(dead_code)] // the tests include this file for `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sim = args.first().is_some_and(|a| a == "--sim");
    if sim {
        args.remove(0);
    }
    let Some(domain) = args.first() else {
        return Err("usage: dom0_pin [--sim] DOMAIN [HARD]".into());
    };
    let hard = args.get(1).map_or("0", String::as_str);
    let platform;
    let host = if sim {
        platform = xenvcpu::sim::SimPlatform::lab_like()?;
        platform.host.clone()
    } else {
        Host::open()?
    };
    for line in run(&host, domain, hard)? {
        println!("{line}");
    }
    Ok(())
}
