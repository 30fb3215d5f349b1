//! [`reconcile`]: one domain's vCPUs and emulator against its resolved policy.

use std::fmt;
use std::time::Duration;

use crate::cpumap::CpuMap;
use crate::error::{Error, NoEmulatorReason, Result};
use crate::ids::{DomId, VcpuId, VcpuSet};
use crate::placement::Resolved;
use crate::{process, Domain};

/// Which differing vCPUs a reconcile writes; the others are reported as [`Report::drift`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Repair {
    /// Every vCPU that differs from the policy (and the emulator).
    #[default]
    All,
    /// Only these vCPUs (a hotplug touched them); the emulator is only checked.
    Only(VcpuSet),
    /// None: only report (a periodic pass without `--enforce`).
    Nothing,
}

impl Repair {
    fn covers(&self, vcpu: VcpuId) -> bool {
        match self {
            Repair::All => true,
            Repair::Only(set) => set.contains(vcpu),
            Repair::Nothing => false,
        }
    }
}

/// How a [`reconcile_with`] runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write nothing: what would be written is reported in [`Report::changed`].
    pub dry_run: bool,
    /// Which differing vCPUs to write.
    pub repair: Repair,
    /// Also check (and, with [`Repair::All`], pin) every thread of the domain's device
    /// model to the policy's emulator CPUs.
    pub emulator: bool,
}

/// One vCPU whose hard affinity differs from its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The vCPU.
    pub vcpu: VcpuId,
    /// Its hard affinity as found.
    pub from: CpuMap,
    /// The policy's.
    pub to: CpuMap,
}

/// What became of the domain's emulator (its device model in dom0).
#[derive(Debug, Default)]
pub enum EmulatorOutcome {
    /// Not looked at ([`Options::emulator`] was off).
    #[default]
    NotChecked,
    /// The domain has no emulator in dom0: a PV domain, or an HVM one whose device model
    /// runs in a stub domain. Not a failure.
    None(NoEmulatorReason),
    /// Every thread already had the policy's CPUs.
    Right {
        /// The device model's process id.
        pid: u32,
    },
    /// Every thread was pinned (or, in a dry run, would be).
    Pinned {
        /// The device model's process id.
        pid: u32,
        /// The policy's CPUs.
        to: CpuMap,
    },
    /// Some thread differs and this reconcile does not repair it.
    Drift {
        /// The device model's process id.
        pid: u32,
        /// The policy's CPUs.
        want: CpuMap,
    },
    /// Checking or pinning it failed.
    Failed(Error),
}

/// What one reconcile of a domain found and did.
#[derive(Debug)]
pub struct Report {
    /// The domain.
    pub domid: DomId,
    /// vCPUs whose hard affinity already was the policy's.
    pub right: VcpuSet,
    /// vCPUs re-pinned (in a dry run: to re-pin).
    pub changed: Vec<Change>,
    /// vCPUs that differ from the policy and were left alone ([`Repair`]).
    pub drift: Vec<Change>,
    /// vCPUs whose re-pin failed, with why.
    pub failed: Vec<(VcpuId, Error)>,
    /// The emulator.
    pub emulator: EmulatorOutcome,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// How long the reconcile took, as [`Agent`](super::Agent) measures it (from the event
    /// that caused it to the report). Zero from [`reconcile`] and [`reconcile_with`], which
    /// read no clock: in a PV dom0 without a stable TSC a clock read is a system call
    /// (Xen's pvclock then has no vDSO path).
    pub took: Duration,
}

impl Report {
    /// Whether nothing failed (drift is not a failure).
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && !matches!(self.emulator, EmulatorOutcome::Failed(_))
    }

    /// The affinity writes made: re-pinned vCPUs, plus one for a pinned emulator (0 in a
    /// dry run).
    pub fn writes(&self) -> usize {
        if self.dry_run {
            return 0;
        }
        self.changed.len() + usize::from(matches!(self.emulator, EmulatorOutcome::Pinned { .. }))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {}: {} vCPUs right", self.domid, self.right.count())?;
        let verb = if self.dry_run { "would re-pin" } else { "re-pinned" };
        for c in &self.changed {
            write!(f, "; {verb} vCPU {} {} -> {}", c.vcpu, c.from, c.to)?;
        }
        for c in &self.drift {
            write!(f, "; drift: vCPU {} is on {}, policy {}", c.vcpu, c.from, c.to)?;
        }
        for (vcpu, e) in &self.failed {
            write!(f, "; vCPU {vcpu} failed: {e}")?;
        }
        match &self.emulator {
            EmulatorOutcome::NotChecked => {}
            EmulatorOutcome::None(reason) => write!(f, "; no emulator ({reason})")?,
            EmulatorOutcome::Right { pid } => write!(f, "; emulator {pid} right")?,
            EmulatorOutcome::Pinned { pid, to } => write!(f, "; {verb} emulator {pid} -> {to}")?,
            EmulatorOutcome::Drift { pid, want } => write!(f, "; drift: emulator {pid} is not on {want}")?,
            EmulatorOutcome::Failed(e) => write!(f, "; emulator failed: {e}")?,
        }
        Ok(())
    }
}

/// Checks that `policy` is for `dom`'s vCPU count.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both counts.
pub fn check_fits(dom: &Domain, policy: &Resolved) -> Result<()> {
    if policy.vcpus.len() == dom.max_vcpus() as usize {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "the policy is for {} vCPUs (<vcpu>{}</vcpu>); domain {} has {}: refused, a policy must fit its domain",
        policy.vcpus.len(),
        policy.vcpus.len(),
        dom.id(),
        dom.max_vcpus()
    )))
}

/// Compares every vCPU's hard affinity (online or not) with `policy` and re-pins those that
/// differ, each on its own (a failure is reported and the others still happen); with
/// `dry_run` nothing is written. The domain's identity is checked before every write. A
/// domain already on its policy costs read hypercalls only.
///
/// The same as [`reconcile_with`] with [`Repair::All`] and no emulator.
///
/// # Errors
/// Those of [`check_fits`], or a failed read of the domain's vCPUs.
pub fn reconcile(dom: &Domain, policy: &Resolved, dry_run: bool) -> Result<Report> {
    reconcile_with(dom, policy, &Options { dry_run, repair: Repair::All, emulator: false })
}

/// [`reconcile`] with a choice of what to repair, and the emulator.
///
/// # Errors
/// Those of [`check_fits`], or a failed read of the domain's vCPUs. Per-vCPU and
/// emulator failures are in the report.
pub fn reconcile_with(dom: &Domain, policy: &Resolved, options: &Options) -> Result<Report> {
    check_fits(dom, policy)?;
    let mut report = Report {
        domid: dom.id(),
        right: VcpuSet::new(),
        changed: Vec::new(),
        drift: Vec::new(),
        failed: Vec::new(),
        emulator: EmulatorOutcome::NotChecked,
        dry_run: options.dry_run,
        took: Duration::ZERO,
    };
    // Every vCPU's hard map first (one getaffinity each, into one buffer), then the
    // changes: a failed read leaves nothing half done.
    let size = dom.host().cpumap_size();
    let mut maps = Vec::new();
    dom.maps_into((0..dom.max_vcpus()).map(VcpuId), dom.max_vcpus() as usize, false, &mut maps)?;
    let mut have = CpuMap::with_capacity(dom.host().nr_cpus());
    let mut repairs = Vec::new();
    for (vcpu, map) in (0..).map(VcpuId).zip(maps.chunks_exact(size)) {
        let want = &policy.vcpus[vcpu.index()].cpus;
        have.assign_libvirt_bytes(map);
        if have == *want {
            report.right.insert(vcpu);
            continue;
        }
        let change = Change { vcpu, from: have.clone(), to: want.clone() };
        if !options.repair.covers(vcpu) {
            report.drift.push(change);
        } else if options.dry_run {
            report.changed.push(change);
        } else {
            repairs.push(change);
        }
    }
    // The repairs, each after an identity check; a failed one leaves the others to go on.
    if !repairs.is_empty() {
        let items: Vec<(VcpuId, &CpuMap)> = repairs.iter().map(|c| (c.vcpu, &c.to)).collect();
        let outcomes = dom.set_hard_each(&items, "a reconcile");
        for (change, outcome) in repairs.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => report.changed.push(change),
                Err(e) => report.failed.push((change.vcpu, e)),
            }
        }
    }
    if options.emulator {
        report.emulator = emulator(dom, &policy.emulator.0, options.repair == Repair::All, options.dry_run);
    }
    Ok(report)
}

/// Checks every thread of the device model against `want`, pinning them all when one
/// differs and `repair` is set (and this is no dry run).
fn emulator(dom: &Domain, want: &CpuMap, repair: bool, dry_run: bool) -> EmulatorOutcome {
    let pid = match dom.emulator_pid() {
        Ok(Some(pid)) => pid,
        Ok(None) if dom.info().flags.hvm => return EmulatorOutcome::None(NoEmulatorReason::NoPidRecorded),
        Ok(None) => return EmulatorOutcome::None(NoEmulatorReason::Pv),
        Err(e) => return EmulatorOutcome::Failed(e),
    };
    let right = process::check_device_model(pid, dom.id()).and_then(|()| {
        let mut all = true;
        for tid in process::threads(pid)? {
            match process::process_affinity(tid) {
                Ok(have) => all &= have == *want,
                // The thread ended meanwhile.
                Err(Error::Process { errno, .. }) if errno.raw() == libc::ESRCH => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all)
    });
    match right {
        Err(e) => EmulatorOutcome::Failed(e),
        Ok(true) => EmulatorOutcome::Right { pid },
        Ok(false) if !repair => EmulatorOutcome::Drift { pid, want: want.clone() },
        Ok(false) if dry_run => EmulatorOutcome::Pinned { pid, to: want.clone() },
        Ok(false) => match process::pin_threads(pid, want) {
            Ok(to) => EmulatorOutcome::Pinned { pid, to },
            Err(e) => EmulatorOutcome::Failed(e),
        },
    }
}
