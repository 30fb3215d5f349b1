//! A host agent's building blocks: [`reconcile`] one domain against its placement policy,
//! and [`Agent`], an event loop over xenstore watches that keeps every domain with a policy
//! placed — for embedding in other host agents.
//!
//! A policy is applied to every vCPU `0..max_vcpus`, online or not: Xen keeps the affinity
//! of an offline vCPU, so whichever tool brings it online later (`xl vcpu-set`, the guest
//! itself), it comes up already placed. A reconcile that finds everything right makes read
//! hypercalls only.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use xenvcpu::agent::{Agent, Event};
//! use xenvcpu::placement::Placement;
//!
//! let host = xenvcpu::Host::open()?;
//! let mut agent = Agent::new(host, Some(Duration::from_secs(60)));
//! agent.set_policy("labguest", Placement::from_xml("<domain><vcpu cpuset='0-1'>4</vcpu></domain>")?);
//! let stop = AtomicBool::new(false);
//! agent.run(&stop, |event: Event| eprintln!("{event}"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cpumap::CpuMap;
use crate::error::{Error, Result};
use crate::ids::{DomId, VcpuId, VcpuSet};
use crate::placement::{Placement, Resolved};
use crate::xenstore::paths;
use crate::{AffinityRequest, Domain, Host};

/// What one reconcile of a domain found and did.
#[derive(Debug)]
pub struct Report {
    /// The domain.
    pub domid: DomId,
    /// vCPUs whose hard affinity already was the policy's.
    pub right: VcpuSet,
    /// vCPUs re-pinned (or, in a dry run, to re-pin): the map they had and the policy's.
    pub changed: Vec<(VcpuId, CpuMap, CpuMap)>,
    /// vCPUs whose re-pin failed, with why.
    pub failed: Vec<(VcpuId, Error)>,
}

impl Report {
    /// Whether every vCPU is (now) on its policy.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {}: {} vCPUs right", self.domid, self.right.count())?;
        for (vcpu, from, to) in &self.changed {
            write!(f, "; vCPU {vcpu} {from} -> {to}")?;
        }
        for (vcpu, e) in &self.failed {
            write!(f, "; vCPU {vcpu} failed: {e}")?;
        }
        Ok(())
    }
}

/// Compares every vCPU's hard affinity (online or not) with `policy` and re-pins those that
/// differ, each on its own (a failure is reported and the others still happen); with
/// `dry_run` nothing is written. The domain's identity is checked before every write.
///
/// # Errors
/// [`Error::InvalidArgument`] when the policy is for another vCPU count (naming both), or a
/// failed read of the domain's vCPUs.
pub fn reconcile(dom: &Domain, policy: &Resolved, dry_run: bool) -> Result<Report> {
    if policy.vcpus.len() != dom.max_vcpus() as usize {
        return Err(Error::InvalidArgument(format!(
            "the policy is for {} vCPUs; domain {} has {}",
            policy.vcpus.len(),
            dom.id(),
            dom.max_vcpus()
        )));
    }
    let mut report = Report { domid: dom.id(), right: VcpuSet::new(), changed: Vec::new(), failed: Vec::new() };
    for v in dom.vcpus()? {
        let want = &policy.vcpus[v.vcpu.index()].cpus;
        if v.hard == *want {
            report.right.insert(v.vcpu);
            continue;
        }
        if !dry_run {
            let result =
                dom.ensure_same("a reconcile").and_then(|()| dom.set_affinity(v.vcpu, &AffinityRequest::hard(want)));
            if let Err(e) = result {
                report.failed.push((v.vcpu, e));
                continue;
            }
        }
        report.changed.push((v.vcpu, v.hard, want.clone()));
    }
    Ok(report)
}

/// What the [`Agent`] reports.
#[derive(Debug)]
pub enum Event {
    /// A domain with a policy was reconciled (on its introduction, a change of its vCPU
    /// availability, or the periodic pass).
    Reconciled(Report),
    /// A domain's reconcile could not even start (its policy does not fit, say).
    Failed {
        /// The domain.
        domid: DomId,
        /// Why.
        error: Error,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Reconciled(report) => report.fmt(f),
            Event::Failed { domid, error } => write!(f, "domain {domid}: {error}"),
        }
    }
}

/// The watch token of the agent's watches.
const TOKEN: &str = "xenvcpu-agent";

/// An event loop that keeps every domain with a policy placed: it watches
/// `@introduceDomain` and `@releaseDomain` (domains coming and going) and each placed
/// domain's `cpu` subtree (availability changes by any tool), and reconciles on each, plus
/// a periodic pass when an interval is given.
#[derive(Debug)]
pub struct Agent {
    host: Host,
    /// Policies by domain name.
    policies: BTreeMap<String, Placement>,
    interval: Option<Duration>,
    dry_run: bool,
}

impl Agent {
    /// An agent for `host`, with a periodic reconcile every `interval` (`None`: only on
    /// events).
    pub fn new(host: Host, interval: Option<Duration>) -> Agent {
        Agent { host, policies: BTreeMap::new(), interval, dry_run: false }
    }

    /// Sets the policy of the domain named `name`.
    pub fn set_policy(&mut self, name: impl Into<String>, placement: Placement) {
        self.policies.insert(name.into(), placement);
    }

    /// Reports what would change without writing anything.
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.dry_run = dry_run;
    }

    /// Reconciles every running domain that has a policy, once.
    ///
    /// # Errors
    /// A failed listing of the domains or of their names; per-domain failures are events.
    pub fn reconcile_all(&self, on_event: &mut impl FnMut(Event)) -> Result<Vec<DomId>> {
        let info = self.host.info()?;
        let mut placed = Vec::new();
        for d in self.host.domains()? {
            let Some(name) = self.host.domain_name(d.domid)? else { continue };
            let Some(placement) = self.policies.get(&name) else { continue };
            placed.push(d.domid);
            let event = self
                .host
                .domain(d.domid)
                .and_then(|dom| {
                    let policy = placement.resolve(&info, None)?;
                    reconcile(&dom, &policy, self.dry_run)
                })
                .map_or_else(|error| Event::Failed { domid: d.domid, error }, Event::Reconciled);
            on_event(event);
        }
        Ok(placed)
    }

    /// Runs until `stop` is set: a first reconcile of everything, then one on every
    /// introduction or release of a domain, every availability change of a placed domain,
    /// and every `interval`. Removes its watches on the way out.
    ///
    /// # Errors
    /// A failed watch or xenstore read, or a failed listing of the domains.
    pub fn run(&self, stop: &AtomicBool, mut on_event: impl FnMut(Event)) -> Result<()> {
        let store = self.host.store()?;
        let xs = |e| self.host.store_error(e);
        for special in ["@introduceDomain", "@releaseDomain"] {
            store.watch(special, TOKEN).map_err(xs)?;
        }
        let mut watched: Vec<DomId> = Vec::new();
        let result = (|| {
            let mut next_pass = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next_pass {
                    let placed = self.reconcile_all(&mut on_event)?;
                    for domid in placed.iter().filter(|d| !watched.contains(d)) {
                        store.watch(&paths::cpu_dir(domid.get()), TOKEN).map_err(xs)?;
                    }
                    watched = placed;
                    next_pass = self
                        .interval
                        .map_or(Instant::now() + Duration::from_secs(u64::from(u32::MAX)), |i| Instant::now() + i);
                }
                // Any event of ours starts a pass at once: a domain came or went, or a
                // placed domain's availability changed.
                if let Some(event) = store.next_event(Duration::from_millis(100)).map_err(xs)? {
                    if event.token == TOKEN {
                        next_pass = Instant::now();
                    }
                }
            }
            Ok(())
        })();
        // Every watch is removed; the loop's own failure comes first, then an unwatch's.
        let mut unwatched = Ok(());
        let paths: Vec<String> = watched.iter().map(|d| paths::cpu_dir(d.get())).collect();
        for path in paths.iter().map(String::as_str).chain(["@introduceDomain", "@releaseDomain"]) {
            if let Err(e) = store.unwatch(path, TOKEN) {
                unwatched = unwatched.and(Err(xs(e)));
            }
        }
        result.and(unwatched)
    }
}
