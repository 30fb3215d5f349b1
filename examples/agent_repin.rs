//! A host-agent loop: keep a domain's vCPUs placed by a policy while the guest's vCPUs come
//! and go. The policy is a libvirt domain XML's `<vcpu cpuset>` / `<vcpupin>`; the agent
//! watches the domain's vCPU availability in xenstore and, on every change, reconciles:
//! each vCPU whose hard affinity differs from the policy is re-pinned, online or not (Xen
//! keeps the affinity of an offline vCPU, so a vCPU comes online already in place), and a
//! reconcile that finds everything right writes nothing.
//!
//! ```text
//! cargo run --example agent_repin -- DOMAIN POLICY.xml [EVENTS]        # on a Xen dom0
//! cargo run --example agent_repin -- --sim labguest POLICY.xml 3       # simulated host
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xenvcpu::placement::{Placement, Resolved};
use xenvcpu::xenstore::paths;
use xenvcpu::{AffinityRequest, DomId, Domain, Host, VcpuId};

/// The watch token of this agent.
const TOKEN: &str = "xenvcpu-agent-repin";

/// Re-pins every vCPU whose hard affinity differs from `policy`; returns the vCPUs that
/// were changed (none when everything was already in place).
pub fn reconcile(dom: &Domain, policy: &Resolved) -> Result<Vec<VcpuId>, xenvcpu::Error> {
    let mut wrong = Vec::new();
    for v in dom.vcpus()? {
        let want = &policy.vcpus[v.vcpu.index()].cpus;
        if v.hard != *want {
            wrong.push((v.vcpu, AffinityRequest::hard(want)));
        }
    }
    Ok(dom.pin_each(&wrong)?.into_iter().map(|(vcpu, _)| vcpu).collect())
}

/// Watches `domain`'s availability and reconciles on every event until `events` events
/// were handled or `stop` is set; returns a line per reconcile that changed something.
pub fn run(
    host: &Host,
    domain: DomId,
    policy_xml: &str,
    events: usize,
    stop: &AtomicBool,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let dom = host.domain(domain)?;
    let policy = Placement::from_xml(policy_xml)?.resolve(&host.info()?, None)?;
    if policy.vcpus.len() != dom.max_vcpus() as usize {
        return Err(
            format!("the policy is for {} vCPUs; domain {domain} has {}", policy.vcpus.len(), dom.max_vcpus()).into()
        );
    }
    let store = host.store()?;
    let dir = paths::cpu_dir(domain.get());
    store.watch(&dir, TOKEN)?;
    let mut log = Vec::new();
    let mut seen = 0;
    // xenstored fires a new watch once at once: the first reconcile needs no change.
    while seen < events && !stop.load(Ordering::Relaxed) {
        let Some(event) = store.next_event(Duration::from_millis(100))? else { continue };
        if event.token != TOKEN {
            continue;
        }
        seen += 1;
        let changed = reconcile(&dom, &policy)?;
        if !changed.is_empty() {
            let list: Vec<String> = changed.iter().map(ToString::to_string).collect();
            log.push(format!("{}: re-pinned vCPUs {}", event.path, list.join(",")));
        }
    }
    store.unwatch(&dir, TOKEN)?;
    Ok(log)
}

#[allow(dead_code)] // the tests include this file for `run`
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sim = args.first().is_some_and(|a| a == "--sim");
    if sim {
        args.remove(0);
    }
    let (Some(domain), Some(file)) = (args.first(), args.get(1)) else {
        return Err("usage: agent_repin [--sim] DOMAIN POLICY.xml [EVENTS]".into());
    };
    let events = args.get(2).map_or(Ok(usize::MAX), |n| n.parse())?;
    let platform;
    let host = if sim {
        platform = xenvcpu::sim::SimPlatform::lab_like()?;
        platform.host.clone()
    } else {
        Host::open()?
    };
    let domid = match domain.parse() {
        Ok(id) => id,
        Err(_) => host.domain_id(domain)?,
    };
    let xml = std::fs::read_to_string(file)?;
    for line in run(&host, domid, &xml, events, &AtomicBool::new(false))? {
        println!("{line}");
    }
    Ok(())
}
