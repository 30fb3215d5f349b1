//! The crate's error type: one enum whose variants a caller can act on.

use xen_sys::{Errno, LoadError};

use crate::cpumap::{CpuListError, CpuMap, CpuMapError};
use crate::ids::{DomId, VcpuId, VcpuSet};
use crate::xenstore::XsError;

/// The result type of xenvcpu.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which hypervisor operation failed: the libxenctrl call behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `xc_interface_open`.
    Open,
    /// `xc_physinfo`.
    PhysInfo,
    /// `xc_cputopoinfo`.
    CpuTopology,
    /// `xc_domain_getinfolist`.
    DomainInfo,
    /// `xc_vcpu_getinfo`.
    VcpuInfo,
    /// `xc_vcpu_getaffinity`.
    GetAffinity,
    /// `xc_vcpu_setaffinity`.
    SetAffinity,
    /// `xc_domain_max_vcpus`.
    MaxVcpus,
    /// `xc_domain_node_getaffinity`.
    NodeAffinity,
    /// `xc_cpupool_getinfo`.
    CpupoolInfo,
    /// `xc_cpupool_freeinfo`.
    CpupoolFreeInfo,
}

impl Op {
    /// The libxenctrl function behind the operation.
    pub const fn call(self) -> &'static str {
        match self {
            Op::Open => "xc_interface_open",
            Op::PhysInfo => "xc_physinfo",
            Op::CpuTopology => "xc_cputopoinfo",
            Op::DomainInfo => "xc_domain_getinfolist",
            Op::VcpuInfo => "xc_vcpu_getinfo",
            Op::GetAffinity => "xc_vcpu_getaffinity",
            Op::SetAffinity => "xc_vcpu_setaffinity",
            Op::MaxVcpus => "xc_domain_max_vcpus",
            Op::NodeAffinity => "xc_domain_node_getaffinity",
            Op::CpupoolInfo => "xc_cpupool_getinfo",
            Op::CpupoolFreeInfo => "xc_cpupool_freeinfo",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.call())
    }
}

/// Which affinity map an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// Hard affinity: where the vCPU may run.
    Hard,
    /// Soft affinity: where it prefers to run.
    Soft,
}

impl std::fmt::Display for MapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MapKind::Hard => "hard",
            MapKind::Soft => "soft",
        })
    }
}

/// Everything that can go wrong in xenvcpu.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not running on Xen (no privcmd device), so there is no hypervisor to manage.
    #[error("{0}")]
    NoXen(String),
    /// libxenctrl could not be loaded (every name tried is listed).
    #[error(transparent)]
    LibraryNotFound(#[from] LoadError),
    /// Not privileged: needs root in dom0 (or a privileged domain).
    #[error("permission denied: managing vCPUs needs root in a privileged domain (dom0): {0}")]
    Permission(String),
    /// The loaded libxenctrl and the running hypervisor speak different domctl/sysctl
    /// interface versions. Decided at open: from their releases before any other call, or
    /// from `EACCES` on the first call (how Xen reports a mismatch).
    #[error(
        "{op}: the loaded {library} does not match the running hypervisor, {hypervisor}: \
         their interface versions differ{} (install the libxenctrl of the hypervisor's \
         release, or set XENVCPU_LIBXENCTRL to it)",
        refused(*.errno)
    )]
    VersionMismatch {
        /// The operation.
        op: Op,
        /// The loaded library: its soname and interface versions.
        library: String,
        /// The running hypervisor: its release and interface versions, as far as known.
        hypervisor: String,
        /// `EACCES` when Xen refused the first call; `None` when decided from the releases.
        errno: Option<Errno>,
    },
    /// A call refused after open with `EACCES` or `EPERM`: Xen's security policy
    /// (XSM/FLASK) or a missing privilege.
    #[error(
        "{op} for {} was denied by Xen's security policy (XSM/FLASK) or insufficient \
         privilege: {errno}",
        target(*.domid, *.vcpu)
    )]
    Denied {
        /// The operation.
        op: Op,
        /// The domain, if the call names one.
        domid: Option<DomId>,
        /// The vCPU, if the call names one.
        vcpu: Option<VcpuId>,
        /// What Xen said.
        #[source]
        errno: Errno,
    },
    /// No domain has this id.
    #[error("no domain with id {domid}")]
    NoSuchDomain {
        /// The domain id asked for.
        domid: DomId,
    },
    /// No domain has this name.
    #[error("no domain named {name:?}")]
    NoSuchDomainName {
        /// The name asked for.
        name: String,
    },
    /// The domain was destroyed while we were working on it; nothing partial is returned.
    #[error("domain {domid} went away during {op}")]
    DomainGone {
        /// The domain.
        domid: DomId,
        /// What was being done.
        op: Op,
        /// What Xen said (`ESRCH`), when a hypercall told us; `None` when a check between
        /// steps found the domain missing.
        errno: Option<Errno>,
    },
    /// The domain id now belongs to another domain: the one we were working on was
    /// destroyed and a new one created under its id. Nothing was written to the newcomer.
    #[error(
        "domain {domid} was replaced during {during}: the domain now under that id is \
         another one (uuid {found}, expected {expected}); nothing was written to it"
    )]
    DomainReplaced {
        /// The domain id.
        domid: DomId,
        /// What was about to be done.
        during: &'static str,
        /// The uuid of the domain the handle was made for.
        expected: Uuid,
        /// The uuid of the domain now under that id.
        found: Uuid,
    },
    /// A vCPU number the domain does not have.
    #[error("domain {domid} has no vCPU {vcpu}: its vCPUs are 0-{max_vcpu_id}")]
    VcpuOutOfRange {
        /// The domain.
        domid: DomId,
        /// The vCPU asked for.
        vcpu: VcpuId,
        /// The domain's highest vCPU id.
        max_vcpu_id: VcpuId,
    },
    /// The domain has no vCPUs at all (it is being built or torn down).
    #[error("domain {domid} has no vCPUs")]
    NoVcpus {
        /// The domain.
        domid: DomId,
    },
    /// An affinity map with no CPU in it.
    #[error("the {kind} affinity map for vCPU {vcpu} of domain {domid} is empty: give at least one CPU")]
    EmptyMap {
        /// The domain.
        domid: DomId,
        /// The vCPU.
        vcpu: VcpuId,
        /// Which map.
        kind: MapKind,
    },
    /// CPUs that the host does not have.
    #[error("{} {cpus} beyond the host, which has CPUs 0-{}", if .cpus.count() == 1 { "CPU" } else { "CPUs" }, .nr_cpus.saturating_sub(1))]
    CpusBeyondHost {
        /// The CPUs that do not exist.
        cpus: CpuMap,
        /// The host's CPU count (`max_cpu_id + 1`).
        nr_cpus: usize,
    },
    /// CPUs that dom0's kernel does not have online: a dom0 process (the emulator) can
    /// only be pinned to dom0's own CPUs, numbered as dom0 sees them.
    #[error(
        "{} {cpus} not online in dom0, whose CPUs are {online} (a dom0 process is pinned in \
         dom0's CPU numbering, not the host's)",
        if .cpus.count() == 1 { "CPU" } else { "CPUs" }
    )]
    CpusNotInDom0 {
        /// The CPUs dom0 does not have online.
        cpus: CpuMap,
        /// dom0's online CPUs.
        online: CpuMap,
    },
    /// The hard affinity has no online CPU of the domain's cpupool: Xen refuses it with
    /// `EINVAL`. [`Domain::pin`](crate::Domain::pin) and
    /// [`pin_each`](crate::Domain::pin_each) refuse it before any hypercall; a single
    /// [`set_affinity`](crate::Domain::set_affinity) (the hot path, which makes no call of
    /// its own) reports it when Xen refuses.
    #[error(
        "hard affinity {map} for vCPU {vcpu} of domain {domid} has no online CPU of the domain's \
         cpupool {pool}{}, whose CPUs are {} ({errno})",
        .pool_name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default(),
        if .online.is_empty() { "none".to_string() } else { .online.to_string() }
    )]
    NoUsableCpu {
        /// The domain.
        domid: DomId,
        /// The vCPU.
        vcpu: VcpuId,
        /// The requested map.
        map: CpuMap,
        /// The domain's cpupool id.
        pool: u32,
        /// The pool's name (`/local/pool/<id>/name`), when xenstore has it.
        pool_name: Option<String>,
        /// The online CPUs of the domain's cpupool (a pool has only online CPUs: Xen takes
        /// a CPU out of its pool when the CPU goes offline).
        online: CpuMap,
        /// `EINVAL`: what Xen said, or would say when the map is refused before the
        /// hypercall.
        errno: Errno,
    },
    /// No cpupool has this id.
    #[error("no cpupool with id {pool}")]
    NoSuchPool {
        /// The pool id asked for.
        pool: u32,
    },
    /// The vCPU's affinity is temporarily overridden (`EBUSY`); `force` undoes the override.
    #[error(
        "vCPU {vcpu} of domain {domid} has a temporary pin override (EBUSY): pass force \
         (xl's --force) to replace it"
    )]
    Busy {
        /// The domain.
        domid: DomId,
        /// The vCPU.
        vcpu: VcpuId,
        /// What Xen said (`EBUSY`).
        errno: Errno,
    },
    /// Asked to change the vCPU maximum of an existing domain, which Xen fixes at creation.
    #[error(
        "the maximum vCPU count of domain {domid} is fixed at creation ({current}); it cannot \
         become {requested} (change the number of online vCPUs instead)"
    )]
    MaxVcpusFixed {
        /// The domain.
        domid: DomId,
        /// Its maximum.
        current: u32,
        /// The maximum asked for.
        requested: u32,
    },
    /// `XEN_DOMCTL_max_vcpus` on the calling domain itself, which Xen refuses.
    #[error("Xen refuses XEN_DOMCTL_max_vcpus for the calling domain itself (domain {domid}): EINVAL")]
    MaxVcpusOnSelf {
        /// The domain.
        domid: DomId,
        /// What Xen said (`EINVAL`).
        errno: Errno,
    },
    /// A multi-vCPU operation failed part-way; the vCPUs already changed were restored.
    #[error("{failed}; {}", rolled_back_note(.restored, .restore_failures))]
    RolledBack {
        /// The failure that stopped the operation.
        failed: Box<Error>,
        /// The vCPUs restored to their previous affinity.
        restored: VcpuSet,
        /// vCPUs whose restore failed too (listed so nothing is hidden).
        restore_failures: Vec<(VcpuId, Error)>,
    },
    /// Any other failed hypercall.
    #[error("{op} failed for {}: {errno}", target(*.domid, *.vcpu))]
    Hypercall {
        /// The operation.
        op: Op,
        /// The domain, if the call names one.
        domid: Option<DomId>,
        /// The vCPU, if the call names one.
        vcpu: Option<VcpuId>,
        /// What Xen said.
        #[source]
        errno: Errno,
    },
    /// The host is larger than any Xen build (more than 4096 CPUs).
    #[error("the host reports a {size}-byte CPU map; Xen supports at most {max} bytes (4096 CPUs)")]
    HostTooLarge {
        /// The reported map size.
        size: usize,
        /// The largest supported.
        max: usize,
    },
    /// A cpumap translation would have lost CPUs, or its buffers are the wrong size.
    #[error(transparent)]
    CpuMap(#[from] CpuMapError),
    /// A cpu-list that could not be parsed.
    #[error(transparent)]
    CpuList(#[from] CpuListError),
    /// A xenstore operation failed.
    #[error(transparent)]
    XenStore(#[from] XsError),
    /// An online vCPU count outside `1..=max_vcpus`.
    #[error("domain {domid} can have 1 to {max} vCPUs online; {requested} was asked for")]
    VcpuCountOutOfRange {
        /// The domain.
        domid: DomId,
        /// The count asked for.
        requested: u32,
        /// The domain's maximum (`max_vcpu_id + 1`).
        max: u32,
    },
    /// vCPU 0 cannot be taken offline.
    #[error("vCPU 0 of domain {domid} cannot be taken offline")]
    Vcpu0Offline {
        /// The domain.
        domid: DomId,
    },
    /// The guest did not bring its vCPUs to the requested state in time.
    #[error(
        "domain {domid}: after {waited_ms} ms, vCPUs {vcpus} had not followed the request \
         (requested online: {requested}; online per Xen: {online}){}",
        follow_hint(.requested, .online)
    )]
    VcpusDidNotFollow {
        /// The domain.
        domid: DomId,
        /// The vCPUs whose state differs from the request.
        vcpus: VcpuSet,
        /// The vCPUs requested online.
        requested: VcpuSet,
        /// The vCPUs online per Xen when the wait ended.
        online: VcpuSet,
        /// How long we waited.
        waited_ms: u64,
    },
    /// A placement (`<vcpu cpuset>`, `<vcpupin>`, `<emulatorpin>`) that is invalid or does
    /// not fit the host.
    #[error(transparent)]
    Placement(#[from] crate::placement::PlacementError),
    /// The domain has no emulator (device model) in dom0 to pin.
    #[error("domain {domid} has no device model in dom0 to pin: {reason}")]
    NoEmulator {
        /// The domain.
        domid: DomId,
        /// Why.
        reason: NoEmulatorReason,
    },
    /// The process recorded as the domain's device model is not one: its command line
    /// does not carry `-xen-domid <domid>` (the pid was reused, or the record is stale).
    #[error(
        "process {pid} is not the device model of domain {domid}: its command line has no \
         `-xen-domid {domid}` ({found}); nothing was pinned"
    )]
    NotDeviceModel {
        /// The domain.
        domid: DomId,
        /// The process.
        pid: u32,
        /// What its command line says instead.
        found: String,
    },
    /// A domain's `<cpu>` is malformed or inconsistent (its position is in the error).
    #[error("{0}")]
    GuestCpu(#[from] crate::cpu::GuestCpuError),
    /// A domain's `<cpu>` asks for what this host cannot give (every feature at fault is
    /// named).
    #[error("{0}")]
    CpuCheck(#[from] crate::cpu::CpuCheckError),
    /// A CPU feature name that Xen does not have (the nearest names are suggested).
    #[error("{0}")]
    FeatureName(#[from] crate::cpu::FeatureNameError),
    /// A CPU policy file (`xenvcpu cpu export`'s JSON) that does not read.
    #[error("{file}: {error}")]
    CpuPolicyFile {
        /// The file.
        file: String,
        /// What is wrong.
        error: crate::cpu::PolicyJsonError,
    },
    /// A domain with one CPU policy cannot run on a host with another (every reason is
    /// named).
    #[error("{0}")]
    CpuIncompatible(String),
    /// A pass of the [`Agent`](crate::agent::Agent) reported failures (each one was an
    /// event of its own).
    #[error("{failed} failures in the agent's pass (reported above)")]
    AgentFailed {
        /// How many.
        failed: usize,
    },
    /// A policy file names another domain (its `<name>` or `<uuid>` is not this domain's).
    /// (What to do about it depends on the caller: the `xenvcpu` command adds its own
    /// hint, since only `apply` has `--force`.)
    #[error("{source_name} is the policy of another domain: its {differs}; nothing was applied to {domain}")]
    PolicyForAnotherDomain {
        /// The policy file.
        source_name: String,
        /// The domain it was to be applied to.
        domain: String,
        /// What differs.
        differs: String,
    },
    /// Bringing this many vCPUs online would give the domain more vCPUs than the host has
    /// physical CPUs online (`xl vcpu-set` refuses this too unless told to ignore the host).
    #[error(
        "domain {domid}: {requested} vCPUs online would overcommit the host's {host_cpus} \
         online physical CPUs (allow it with --ignore-host)"
    )]
    Overcommit {
        /// The domain.
        domid: DomId,
        /// The vCPUs that would be online.
        requested: u32,
        /// The host's online physical CPUs.
        host_cpus: u32,
    },
    /// xenstore is unreachable or does not answer in time: xenstored is not running, is
    /// stopped or wedged.
    #[error("xenstore at {endpoint} is unreachable or not answering: {reason}")]
    XenStoreUnavailable {
        /// The socket or device that was used (or every one tried).
        endpoint: String,
        /// What failed, as the xenstore layer said it.
        reason: String,
        /// The errno behind it (`ETIMEDOUT` for a reply that did not come).
        errno: Option<Errno>,
    },
    /// The operation itself succeeded, but putting back the state it had changed
    /// temporarily (a benchmark's pins) failed for some vCPUs: each is listed.
    #[error("restoring the previous affinity failed{}", restore_note(.restore_failures).trim_start_matches("; restoring failed"))]
    RestoreFailed {
        /// The vCPUs restored.
        restored: VcpuSet,
        /// vCPUs whose restore failed, with why.
        restore_failures: Vec<(VcpuId, Error)>,
    },
    /// The operation was interrupted by a signal; what it had changed was restored.
    #[error("interrupted by {signal}; {}", rolled_back_note(.restored, .restore_failures))]
    Interrupted {
        /// The signal (`SIGINT`, `SIGTERM`).
        signal: &'static str,
        /// The vCPUs restored to their previous affinity.
        restored: VcpuSet,
        /// vCPUs whose restore failed.
        restore_failures: Vec<(VcpuId, Error)>,
    },
    /// A process CPU map with no CPU.
    #[error("the CPU map for process {pid} is empty: give at least one CPU")]
    EmptyProcessMap {
        /// The process.
        pid: u32,
    },
    /// A system call on a process failed.
    #[error("{op} on process {pid} failed: {errno}")]
    Process {
        /// The process.
        pid: u32,
        /// The call.
        op: &'static str,
        /// What the kernel said.
        #[source]
        errno: xen_sys::Errno,
    },
    /// The operation does not apply to this domain.
    #[error("{0}")]
    Unsupported(String),
    /// An argument outside what the operation allows.
    #[error("{0}")]
    InvalidArgument(String),
}

fn target(domid: Option<DomId>, vcpu: Option<VcpuId>) -> String {
    match (domid, vcpu) {
        (Some(d), Some(v)) => format!("vCPU {v} of domain {d}"),
        (Some(d), None) => format!("domain {d}"),
        _ => "the host".into(),
    }
}

/// Why a domain has no device model in dom0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoEmulatorReason {
    /// A PV domain runs without one.
    Pv,
    /// An HVM domain with no `image/device-model-pid` in xenstore: its device model runs
    /// in a stub domain, or has not been started yet (or was started by another
    /// toolstack that does not record it).
    NoPidRecorded,
}

impl std::fmt::Display for NoEmulatorReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoEmulatorReason::Pv => "a PV domain runs without an emulator",
            NoEmulatorReason::NoPidRecorded => {
                "it is HVM, but xenstore records no image/device-model-pid: its device model runs \
                 in a stub domain, or has not been started yet"
            }
        })
    }
}

/// A 128-bit domain handle (`xen_domain_handle_t`), shown as a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Uuid {
    type Err = String;

    /// Parses 32 hexadecimal digits, with or without dashes anywhere between pairs of
    /// digits (libvirt's `<uuid>` accepts both `8-4-4-4-12` and the bare form).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let text = s.trim();
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
        let bad = || format!("{text:?} is not a UUID: give 32 hexadecimal digits, as 8-4-4-4-12 or without dashes");
        if digits.len() != 32
            || !digits.iter().all(u8::is_ascii_hexdigit)
            || text.starts_with('-')
            || text.ends_with('-')
            || text.contains("--")
        {
            return Err(bad());
        }
        let mut uuid = [0u8; 16];
        for (byte, pair) in uuid.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Uuid(uuid))
    }
}

/// Names the usual cause when vCPUs requested online stayed offline: a Linux guest's
/// kernel only marks a returning vCPU present; its userspace (a udev rule) must online it.
fn follow_hint(requested: &VcpuSet, online: &VcpuSet) -> &'static str {
    if requested.difference(online).is_empty() {
        ""
    } else {
        ". A vCPU requested online that stays offline usually means the guest's userspace \
         did not online a vCPU its kernel marked present (Linux needs a udev rule or \
         `echo 1 > /sys/devices/system/cpu/cpuN/online` in the guest)"
    }
}

fn refused(errno: Option<Errno>) -> String {
    errno.map_or_else(String::new, |e| format!(" (Xen refused the first call: {e})"))
}

/// What a rollback did: the vCPUs restored, or that nothing had been changed (the
/// failure came before the first change), and every restore that failed.
fn rolled_back_note(restored: &VcpuSet, failures: &[(VcpuId, Error)]) -> String {
    match (restored.is_empty(), failures.is_empty()) {
        (true, true) => "nothing had been changed".to_string(),
        (true, false) => format!("no vCPU could be restored{}", restore_note(failures)),
        (false, _) => format!("the vCPUs changed before it ({restored}) were restored{}", restore_note(failures)),
    }
}

fn restore_note(failures: &[(VcpuId, Error)]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let list: Vec<String> = failures.iter().map(|(v, e)| format!("vCPU {v}: {e}")).collect();
    format!("; restoring failed for {}", list.join("; "))
}

impl Error {
    /// [`Error::XenStoreUnavailable`] for a xenstore failure at `endpoint`.
    pub fn xenstore_unavailable(endpoint: impl Into<String>, e: &XsError) -> Error {
        Error::XenStoreUnavailable {
            endpoint: endpoint.into(),
            reason: e.to_string(),
            errno: e.raw_errno().map(Errno::new),
        }
    }

    /// The errno behind the error, when it was built from one: a failed hypercall, a
    /// refused process call, an `XS_ERROR` reply of xenstored (or an i/o error on its
    /// connection), and the errors those wrap.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Hypercall { errno, .. }
            | Error::Denied { errno, .. }
            | Error::NoUsableCpu { errno, .. }
            | Error::Busy { errno, .. }
            | Error::MaxVcpusOnSelf { errno, .. }
            | Error::Process { errno, .. } => Some(*errno),
            Error::DomainGone { errno, .. }
            | Error::XenStoreUnavailable { errno, .. }
            | Error::VersionMismatch { errno, .. } => *errno,
            Error::RolledBack { failed, .. } => failed.errno(),
            Error::XenStore(e) => e.raw_errno().map(Errno::new),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_followed(requested: &str, online: &str) -> String {
        let (requested, online): (VcpuSet, VcpuSet) = (requested.parse().unwrap(), online.parse().unwrap());
        Error::VcpusDidNotFollow {
            domid: DomId(0),
            vcpus: requested.difference(&online).union(&online.difference(&requested)),
            requested,
            online,
            waited_ms: 60_000,
        }
        .to_string()
    }

    #[test]
    fn vcpus_that_stay_offline_name_the_guest_userspace_as_the_likely_cause() {
        let text = not_followed("0-3", "0-1");
        assert_eq!(
            text.split(". ").next().unwrap(),
            "domain 0: after 60000 ms, vCPUs 2-3 had not followed the request (requested online: 0-3; online per Xen: 0-1)"
        );
        assert!(text.contains("the guest's userspace did not online a vCPU its kernel marked present"), "{text}");
        assert!(!text.contains("  "), "no runs of spaces: {text:?}");
        // vCPUs that stay online past an offline request: not that cause.
        let text = not_followed("0", "0-1");
        assert!(!text.contains("userspace") && !text.contains("  "), "{text:?}");
    }

    #[test]
    fn errors_built_from_an_errno_keep_it() {
        let e = Errno::new(libc::EBUSY);
        let cases = [
            Error::Busy { domid: DomId(1), vcpu: VcpuId(0), errno: e },
            Error::MaxVcpusOnSelf { domid: DomId(0), errno: e },
            Error::NoUsableCpu {
                domid: DomId(1),
                vcpu: VcpuId(0),
                map: CpuMap::new(),
                pool: 0,
                pool_name: None,
                online: CpuMap::new(),
                errno: e,
            },
            Error::DomainGone { domid: DomId(1), op: Op::VcpuInfo, errno: Some(e) },
            Error::Hypercall { op: Op::VcpuInfo, domid: None, vcpu: None, errno: e },
            Error::Process { pid: 1, op: "sched_setaffinity", errno: e },
            Error::RolledBack {
                failed: Box::new(Error::Busy { domid: DomId(1), vcpu: VcpuId(0), errno: e }),
                restored: VcpuSet::new(),
                restore_failures: Vec::new(),
            },
        ];
        for error in cases {
            assert_eq!(error.errno(), Some(e), "{error}");
        }
        let xs =
            XsError::Timeout { op: crate::xenstore::XsOp::Read, path: None, after: std::time::Duration::from_secs(2) };
        assert_eq!(
            Error::xenstore_unavailable("/run/xenstored/socket", &xs).errno(),
            Some(Errno::new(libc::ETIMEDOUT))
        );
    }
}
