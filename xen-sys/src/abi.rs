//! `#[repr(C)]` mirrors of the Xen structures and numbers in
//! `vendor-headers/xenvcpu_xen_abi.h` and `vendor-headers/xenvcpu_xenctrl.h`.
//!
//! The C names are kept so that `tests/layout.rs` can compare every item with the C
//! declarations mechanically. Layouts are those of Xen 4.17 to 4.22 on x86_64 (identical in
//! all six releases); 64-bit guest handles are `u64` fields holding a buffer address.
//!
//! Nothing here talks to Xen: these are plain data. The hypervisor fills the `out` fields;
//! `Default` gives an all-zero value to pass as an output buffer.
#![allow(non_camel_case_types, non_upper_case_globals)]

use std::fmt;
use std::marker::{PhantomData, PhantomPinned};
use std::mem::{align_of, size_of};

/// A domain number (`domid_t`). Ordinary domains are below [`DOMID_FIRST_RESERVED`].
pub type domid_t = u16;

/// First domain id reserved for special meanings (`DOMID_SELF` and friends).
pub const DOMID_FIRST_RESERVED: domid_t = 0x7FF0;

// ---- domctl command numbers -------------------------------------------------------------

/// `xen_domctl.cmd`: read one domain's [`xen_domctl_getdomaininfo`].
pub const XEN_DOMCTL_getdomaininfo: u32 = 5;
/// `xen_domctl.cmd`: set a vCPU's hard/soft affinity ([`xen_domctl_vcpuaffinity`]).
pub const XEN_DOMCTL_setvcpuaffinity: u32 = 9;
/// `xen_domctl.cmd`: read one vCPU's state ([`xen_domctl_getvcpuinfo`]).
pub const XEN_DOMCTL_getvcpuinfo: u32 = 14;
/// `xen_domctl.cmd`: allocate vCPUs up to a maximum ([`xen_domctl_max_vcpus`]).
pub const XEN_DOMCTL_max_vcpus: u32 = 15;
/// `xen_domctl.cmd`: read a vCPU's hard/soft affinity ([`xen_domctl_vcpuaffinity`]).
pub const XEN_DOMCTL_getvcpuaffinity: u32 = 25;
/// `xen_domctl.cmd`: read a domain's NUMA node affinity ([`xen_domctl_nodeaffinity`]).
pub const XEN_DOMCTL_getnodeaffinity: u32 = 69;

// ---- sysctl command numbers -------------------------------------------------------------

/// `xen_sysctl.cmd`: host CPU/memory summary ([`xen_sysctl_physinfo`]).
pub const XEN_SYSCTL_physinfo: u32 = 3;
/// `xen_sysctl.cmd`: list domains from a first id (behind `xc_domain_getinfolist`).
pub const XEN_SYSCTL_getdomaininfolist: u32 = 6;
/// `xen_sysctl.cmd`: per-CPU core/socket/node ([`xen_sysctl_cputopoinfo`]).
pub const XEN_SYSCTL_cputopoinfo: u32 = 16;

// ---- flags ------------------------------------------------------------------------------

/// [`xen_domctl_getdomaininfo::flags`]: the domain is being destroyed.
pub const XEN_DOMINF_dying: u32 = 1 << 0;
/// [`xen_domctl_getdomaininfo::flags`]: HVM (or PVH) guest rather than PV.
pub const XEN_DOMINF_hvm_guest: u32 = 1 << 1;
/// [`xen_domctl_getdomaininfo::flags`]: the guest has shut down.
pub const XEN_DOMINF_shutdown: u32 = 1 << 2;
/// [`xen_domctl_getdomaininfo::flags`]: paused by the toolstack.
pub const XEN_DOMINF_paused: u32 = 1 << 3;
/// [`xen_domctl_getdomaininfo::flags`]: blocked waiting for an event.
pub const XEN_DOMINF_blocked: u32 = 1 << 4;
/// [`xen_domctl_getdomaininfo::flags`]: running on a physical CPU now.
pub const XEN_DOMINF_running: u32 = 1 << 5;
/// [`xen_domctl_getdomaininfo::flags`]: being debugged.
pub const XEN_DOMINF_debugged: u32 = 1 << 6;
/// [`xen_domctl_getdomaininfo::flags`]: the domain runs xenstored.
pub const XEN_DOMINF_xs_domain: u32 = 1 << 7;
/// [`xen_domctl_getdomaininfo::flags`]: hardware-assisted paging.
pub const XEN_DOMINF_hap: u32 = 1 << 8;
/// Shift of the guest's shutdown reason inside [`xen_domctl_getdomaininfo::flags`].
pub const XEN_DOMINF_shutdownshift: u32 = 16;
/// Mask (after shifting) of the guest's shutdown reason.
pub const XEN_DOMINF_shutdownmask: u32 = 255;

/// [`xen_arch_domainconfig::emulation_flags`]: the local APIC. Every HVM container (HVM and
/// PVH) has it; a PV domain has no emulation flag at all.
pub const XEN_X86_EMU_LAPIC: u32 = 1 << 0;
/// [`xen_arch_domainconfig::emulation_flags`]: the HPET.
pub const XEN_X86_EMU_HPET: u32 = 1 << 1;
/// [`xen_arch_domainconfig::emulation_flags`]: ACPI power-management timer and registers.
pub const XEN_X86_EMU_PM: u32 = 1 << 2;
/// [`xen_arch_domainconfig::emulation_flags`]: the RTC.
pub const XEN_X86_EMU_RTC: u32 = 1 << 3;
/// [`xen_arch_domainconfig::emulation_flags`]: the IO-APIC (HVM guests and a PVH dom0).
pub const XEN_X86_EMU_IOAPIC: u32 = 1 << 4;
/// [`xen_arch_domainconfig::emulation_flags`]: the 8259 PIC. libxl gives it to HVM guests
/// (with the other legacy devices) and never to PVH ones, which makes it the sign of a
/// full HVM guest.
pub const XEN_X86_EMU_PIC: u32 = 1 << 5;
/// [`xen_arch_domainconfig::emulation_flags`]: standard VGA.
pub const XEN_X86_EMU_VGA: u32 = 1 << 6;
/// [`xen_arch_domainconfig::emulation_flags`]: the emulated IOMMU.
pub const XEN_X86_EMU_IOMMU: u32 = 1 << 7;
/// [`xen_arch_domainconfig::emulation_flags`]: the PIT.
pub const XEN_X86_EMU_PIT: u32 = 1 << 8;
/// [`xen_arch_domainconfig::emulation_flags`]: event channels for the guest's PIRQs.
pub const XEN_X86_EMU_USE_PIRQ: u32 = 1 << 9;
/// [`xen_arch_domainconfig::emulation_flags`]: virtual PCI (a PVH dom0).
pub const XEN_X86_EMU_VPCI: u32 = 1 << 10;

/// [`xen_domctl_getdomaininfo::max_vcpu_id`] of a domain without any vCPU.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// [`xen_domctl_vcpuaffinity::flags`]: the hard affinity (where the vCPU may run).
pub const XEN_VCPUAFFINITY_HARD: u32 = 1 << 0;
/// [`xen_domctl_vcpuaffinity::flags`]: the soft affinity (where the scheduler prefers it).
pub const XEN_VCPUAFFINITY_SOFT: u32 = 1 << 1;
/// [`xen_domctl_vcpuaffinity::flags`]: also undo a guest's temporary pin override
/// (otherwise setting hard affinity then fails with `EBUSY`).
pub const XEN_VCPUAFFINITY_FORCE: u32 = 1 << 2;

/// [`xen_sysctl_cputopo::core`] of a CPU that is not present.
pub const XEN_INVALID_CORE_ID: u32 = !0;
/// [`xen_sysctl_cputopo::socket`] of a CPU that is not present.
pub const XEN_INVALID_SOCKET_ID: u32 = !0;
/// [`xen_sysctl_cputopo::node`] of a CPU that is not present or has no NUMA node.
pub const XEN_INVALID_NODE_ID: u32 = !0;

/// `xc_cpupoolinfo_t::sched_id`: the credit scheduler.
pub const XEN_SCHEDULER_CREDIT: u32 = 5;
/// `xc_cpupoolinfo_t::sched_id`: the credit2 scheduler (Xen's default since 4.12).
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
/// `xc_cpupoolinfo_t::sched_id`: the ARINC 653 scheduler.
pub const XEN_SCHEDULER_ARINC653: u32 = 7;
/// `xc_cpupoolinfo_t::sched_id`: the RTDS (real-time deferrable server) scheduler.
pub const XEN_SCHEDULER_RTDS: u32 = 8;
/// `xc_cpupoolinfo_t::sched_id`: the null scheduler (one vCPU per CPU).
pub const XEN_SCHEDULER_NULL: u32 = 9;

/// `xc_cpupool_create` pool id meaning "let Xen choose".
pub const XC_CPUPOOL_POOLID_ANY: u32 = 0xFFFF_FFFF;

/// `xc_version` command: returns `(major << 16) | minor` of the running hypervisor.
pub const XENVER_version: libc::c_int = 0;

/// `xc_interface_open` flag: do not really open the hypervisor interface.
pub const XC_OPENFLAG_DUMMY: libc::c_uint = 1 << 0;
/// `xc_interface_open` flag: the caller serialises every call on the handle. Never used by
/// xen-sys, which relies on handles being usable from several threads.
pub const XC_OPENFLAG_NON_REENTRANT: libc::c_uint = 1 << 1;

// ---- structures -------------------------------------------------------------------------

/// A CPU bitmap passed by address (`struct xenctl_bitmap`, 16 bytes).
///
/// Byte `i` of the buffer holds CPUs `8i..8i+7`, lowest CPU in the least significant bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xenctl_bitmap {
    /// Address of the bitmap bytes (a 64-bit guest handle).
    pub bitmap: u64,
    /// Number of valid bits at that address.
    pub nr_bits: u32,
}

/// x86 creation-time configuration of a domain (`struct xen_arch_domainconfig`, 8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_arch_domainconfig {
    /// Devices Xen emulates for the domain (`XEN_X86_EMU_*`, e.g. [`XEN_X86_EMU_LAPIC`]):
    /// none for PV, the local APIC alone for a PVH guest, the legacy platform for HVM.
    pub emulation_flags: u32,
    /// Miscellaneous flags (`XEN_X86_MSR_RELAXED`).
    pub misc_flags: u32,
}

/// One domain's summary (`struct xen_domctl_getdomaininfo`, 112 bytes); also the element
/// of `xc_domain_getinfolist`'s array ([`xc_domaininfo_t`]). All fields are outputs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_domctl_getdomaininfo {
    /// The domain described. `xc_domain_getinfolist` may describe a *later* domain than the
    /// one asked for: always compare (see [`crate::getinfo_one`]).
    pub domain: domid_t,
    /// Padding.
    pub pad1: u16,
    /// `XEN_DOMINF_*` bits and the shutdown reason (bits 16..23).
    pub flags: u32,
    /// Pages allocated to the domain.
    pub tot_pages: u64,
    /// Page allocation limit.
    pub max_pages: u64,
    /// Pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// Shared pages.
    pub shr_pages: u64,
    /// Paged-out pages.
    pub paged_pages: u64,
    /// Guest frame number of the shared-info page.
    pub shared_info_frame: u64,
    /// CPU time used by all vCPUs, in nanoseconds.
    pub cpu_time: u64,
    /// Number of vCPUs that are up.
    pub nr_online_vcpus: u32,
    /// Highest vCPU id, or [`XEN_INVALID_MAX_VCPU_ID`]. Fixed at creation since Xen 4.12.
    pub max_vcpu_id: u32,
    /// XSM security id.
    pub ssidref: u32,
    /// The domain's UUID.
    pub handle: [u8; 16],
    /// The CPU pool the domain runs in.
    pub cpupool: u32,
    /// Guest physical address width.
    pub gpaddr_bits: u8,
    /// Padding.
    pub pad2: [u8; 7],
    /// Creation-time architecture configuration.
    pub arch_config: xen_arch_domainconfig,
}

impl xen_domctl_getdomaininfo {
    /// The guest's shutdown reason (`SHUTDOWN_*`), meaningful when
    /// [`XEN_DOMINF_shutdown`] is set. The same as Xen 4.18's `dominfo_shutdown_reason()`,
    /// which 4.17's headers lack.
    pub const fn shutdown_reason(&self) -> u32 {
        (self.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask
    }

    /// Number of vCPU ids the domain has (`max_vcpu_id + 1`, or 0 when it has none).
    pub const fn vcpu_count(&self) -> u32 {
        if self.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID {
            0
        } else {
            self.max_vcpu_id + 1
        }
    }
}

/// Affinity of one vCPU (`struct xen_domctl_vcpuaffinity`, 40 bytes), the payload of
/// [`XEN_DOMCTL_setvcpuaffinity`] and [`XEN_DOMCTL_getvcpuaffinity`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_domctl_vcpuaffinity {
    /// In: the vCPU.
    pub vcpu: u32,
    /// In: `XEN_VCPUAFFINITY_*`.
    pub flags: u32,
    /// Hard affinity; on set, in/out (the effective map is written back).
    pub cpumap_hard: xenctl_bitmap,
    /// Soft affinity; on set, in/out (the effective map is written back).
    pub cpumap_soft: xenctl_bitmap,
}

/// State of one vCPU (`struct xen_domctl_getvcpuinfo`, 24 bytes; [`xc_vcpuinfo_t`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_domctl_getvcpuinfo {
    /// In: the vCPU.
    pub vcpu: u32,
    /// Out: non-zero if the vCPU is up.
    pub online: u8,
    /// Out: non-zero if blocked waiting for an event.
    pub blocked: u8,
    /// Out: non-zero if on a physical CPU now. Online, not blocked and not running means
    /// runnable.
    pub running: u8,
    /// Out: nanoseconds spent running.
    pub cpu_time: u64,
    /// Out: physical CPU last used. Stale while the vCPU is offline.
    pub cpu: u32,
}

/// Payload of [`XEN_DOMCTL_getnodeaffinity`] (`struct xen_domctl_nodeaffinity`, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_domctl_nodeaffinity {
    /// Out: the NUMA nodes (bit `i` = node `i`, the layout of a CPU bitmap).
    pub nodemap: xenctl_bitmap,
}

/// Payload of [`XEN_DOMCTL_max_vcpus`] (`struct xen_domctl_max_vcpus`, 4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_domctl_max_vcpus {
    /// In: the maximum number of vCPUs.
    pub max: u32,
}

/// The payload union of [`xen_domctl`] (anonymous in C; 128 bytes), limited to the members
/// xenvcpu uses plus the `pad` that gives the union its size.
#[repr(C)]
#[derive(Clone, Copy)]
pub union xen_domctl_u {
    /// For [`XEN_DOMCTL_getdomaininfo`].
    pub getdomaininfo: xen_domctl_getdomaininfo,
    /// For [`XEN_DOMCTL_getnodeaffinity`].
    pub nodeaffinity: xen_domctl_nodeaffinity,
    /// For [`XEN_DOMCTL_setvcpuaffinity`] / [`XEN_DOMCTL_getvcpuaffinity`].
    pub vcpuaffinity: xen_domctl_vcpuaffinity,
    /// For [`XEN_DOMCTL_getvcpuinfo`].
    pub getvcpuinfo: xen_domctl_getvcpuinfo,
    /// For [`XEN_DOMCTL_max_vcpus`].
    pub max_vcpus: xen_domctl_max_vcpus,
    /// Raw bytes: the size of the union.
    pub pad: [u8; 128],
}

impl Default for xen_domctl_u {
    fn default() -> Self {
        Self { pad: [0; 128] }
    }
}

impl fmt::Debug for xen_domctl_u {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Which member is live depends on xen_domctl.cmd, which the union cannot see.
        f.write_str("xen_domctl_u { .. }")
    }
}

/// The domctl hypercall argument (`struct xen_domctl`, 144 bytes).
///
/// libxenctrl builds these itself; the mirror exists so the layout is pinned and available
/// to code that must reason about the wire format.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct xen_domctl {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// The release's domctl interface version (see [`INTERFACE_VERSIONS`]).
    pub interface_version: u32,
    /// Target domain.
    pub domain: domid_t,
    /// Padding.
    pub _pad: [u16; 3],
    /// Command payload, selected by `cmd`.
    pub u: xen_domctl_u,
}

/// Host CPU and memory summary (`struct xen_sysctl_physinfo`, 112 bytes; [`xc_physinfo_t`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_sysctl_physinfo {
    /// Threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// CPUs online now.
    pub nr_cpus: u32,
    /// Highest CPU id the host can have. CPU maps are sized from `max_cpu_id + 1`, never
    /// from `nr_cpus` (CPU ids can be sparse).
    pub max_cpu_id: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    /// Highest NUMA node id Xen supports (`MAX_NUMNODES - 1`, 63 on x86), not the host's:
    /// node maps are sized from it.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*` bits.
    pub capabilities: u32,
    /// Architecture-specific capability bits.
    pub arch_capabilities: u32,
    /// Padding.
    pub pad: u32,
    /// Host memory pages.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Pages waiting to be scrubbed.
    pub scrub_pages: u64,
    /// Pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// Highest machine frame number.
    pub max_mfn: u64,
    /// CPUID feature words.
    pub hw_cap: [u32; 8],
}

/// Topology of one CPU (`struct xen_sysctl_cputopo`, 12 bytes; [`xc_cputopo_t`]).
/// All three are `!0` ([`XEN_INVALID_CORE_ID`] …) for a CPU that is not present.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_sysctl_cputopo {
    /// Core id.
    pub core: u32,
    /// Socket id.
    pub socket: u32,
    /// NUMA node id.
    pub node: u32,
}

/// Payload of [`XEN_SYSCTL_cputopoinfo`] (`struct xen_sysctl_cputopoinfo`, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_sysctl_cputopoinfo {
    /// In: entries at `cputopo`; out: entries written (or needed, when `cputopo` is 0).
    pub num_cpus: u32,
    /// Address of a `xen_sysctl_cputopo[num_cpus]` array (64-bit guest handle).
    pub cputopo: u64,
}

/// One CPUID leaf of a serialised CPU policy (`xen_cpuid_leaf_t`, 24 bytes): the input
/// `leaf`/`subleaf` and the output registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct xen_cpuid_leaf {
    /// `eax` input.
    pub leaf: u32,
    /// `ecx` input, or [`XEN_CPUID_NO_SUBLEAF`] for a leaf without subleaves.
    pub subleaf: u32,
    /// `eax` output.
    pub a: u32,
    /// `ebx` output.
    pub b: u32,
    /// `ecx` output.
    pub c: u32,
    /// `edx` output.
    pub d: u32,
}

/// [`xen_cpuid_leaf::subleaf`] of a leaf that has no subleaves.
pub const XEN_CPUID_NO_SUBLEAF: u32 = 0xffff_ffff;

/// One MSR of a serialised CPU policy (`xen_msr_entry_t`, 16 bytes). Xen 4.17–4.22
/// serialise two: `0xce` (`MSR_INTEL_PLATFORM_INFO`) and `0x10a` (`MSR_ARCH_CAPABILITIES`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct xen_msr_entry {
    /// The MSR's index.
    pub idx: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// The MSR's value.
    pub val: u64,
}

/// libxenguest's name for [`xen_cpuid_leaf`].
pub type xen_cpuid_leaf_t = xen_cpuid_leaf;
/// libxenguest's name for [`xen_msr_entry`].
pub type xen_msr_entry_t = xen_msr_entry;

/// `xc_get_cpu_featureset` index: what the hardware offers (before Xen's command line).
pub const XEN_SYSCTL_cpu_featureset_raw: u32 = 0;
/// `xc_get_cpu_featureset` index: what Xen uses (after command-line overrides).
pub const XEN_SYSCTL_cpu_featureset_host: u32 = 1;
/// `xc_get_cpu_featureset` index: a PV guest's default.
pub const XEN_SYSCTL_cpu_featureset_pv: u32 = 2;
/// `xc_get_cpu_featureset` index: an HVM guest's default.
pub const XEN_SYSCTL_cpu_featureset_hvm: u32 = 3;
/// `xc_get_cpu_featureset` index: the most a PV guest may have. From Xen 4.17.2
/// (`EINVAL` before).
pub const XEN_SYSCTL_cpu_featureset_pv_max: u32 = 4;
/// `xc_get_cpu_featureset` index: the most an HVM guest may have. From Xen 4.17.2
/// (`EINVAL` before).
pub const XEN_SYSCTL_cpu_featureset_hvm_max: u32 = 5;

/// `xc_cpu_policy_get_system` index: the hardware's policy. The policy indices are not in
/// the order of the featureset ones.
pub const XEN_SYSCTL_cpu_policy_raw: u32 = 0;
/// `xc_cpu_policy_get_system` index: the policy Xen uses.
pub const XEN_SYSCTL_cpu_policy_host: u32 = 1;
/// `xc_cpu_policy_get_system` index: the most a PV guest may have.
pub const XEN_SYSCTL_cpu_policy_pv_max: u32 = 2;
/// `xc_cpu_policy_get_system` index: the most an HVM guest may have.
pub const XEN_SYSCTL_cpu_policy_hvm_max: u32 = 3;
/// `xc_cpu_policy_get_system` index: a PV guest's default.
pub const XEN_SYSCTL_cpu_policy_pv_default: u32 = 4;
/// `xc_cpu_policy_get_system` index: an HVM guest's default.
pub const XEN_SYSCTL_cpu_policy_hvm_default: u32 = 5;

/// Opaque libxenguest CPU policy object (`xc_cpu_policy_t`): allocated by
/// `xc_cpu_policy_init`, freed by `xc_cpu_policy_destroy`, only ever used behind a
/// pointer. Its layout is private to libxenguest (and changed in 4.18).
#[repr(C)]
#[derive(Debug)]
pub struct xc_cpu_policy_t {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque libxenctrl handle (`xc_interface`, i.e. `struct xc_interface_core`). Only ever
/// used behind a pointer; see [`crate::Interface`] for an owned one.
#[repr(C)]
#[derive(Debug)]
pub struct xc_interface {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `xentoollog_level` (an `int`-sized C enum): [`XTL_DEBUG`] … [`XTL_CRITICAL`].
pub type xentoollog_level = libc::c_int;
/// Debugging detail.
pub const XTL_DEBUG: xentoollog_level = 1;
/// Verbose detail.
pub const XTL_VERBOSE: xentoollog_level = 2;
/// Detail.
pub const XTL_DETAIL: xentoollog_level = 3;
/// Progress reports (libxenctrl's default stderr logger prints from this level up).
pub const XTL_PROGRESS: xentoollog_level = 4;
/// Information.
pub const XTL_INFO: xentoollog_level = 5;
/// Notable events.
pub const XTL_NOTICE: xentoollog_level = 6;
/// Warnings.
pub const XTL_WARN: xentoollog_level = 7;
/// Errors.
pub const XTL_ERROR: xentoollog_level = 8;
/// Critical errors.
pub const XTL_CRITICAL: xentoollog_level = 9;

/// A libxentoollog logger (`struct xentoollog_logger` of `<xentoollog.h>`): a table of three
/// callbacks, which a concrete logger may follow with its own data.
///
/// libxenctrl calls `vmessage` for every message of `xc_*` and of the libraries below it
/// (libxencall …). With a null logger it creates one that prints to stderr; xen-sys passes
/// its own ([`crate::logger`]), which never prints. `va_list` is declared as `*mut c_void`:
/// on x86_64 SysV (the only target of this crate) a `va_list` parameter is passed as a
/// pointer to the `__va_list_tag` array.
#[repr(C)]
#[derive(Debug)]
pub struct xentoollog_logger {
    /// `vmessage(logger, level, errnoval /* or -1 */, context /* may be null */, format, al)`:
    /// one message, `printf`-formatted from `format` and the `va_list` `al`, without level,
    /// context or newline.
    pub vmessage: Option<
        unsafe extern "C" fn(
            logger: *mut xentoollog_logger,
            level: xentoollog_level,
            errnoval: libc::c_int,
            context: *const libc::c_char,
            format: *const libc::c_char,
            al: *mut libc::c_void,
        ),
    >,
    /// `progress(logger, context, doing_what, percent, done, total)`; may be null.
    pub progress: Option<
        unsafe extern "C" fn(
            logger: *mut xentoollog_logger,
            context: *const libc::c_char,
            doing_what: *const libc::c_char,
            percent: libc::c_int,
            done: libc::c_ulong,
            total: libc::c_ulong,
        ),
    >,
    /// `destroy(logger)`: called by `xtl_logger_destroy`. libxenctrl only destroys the
    /// loggers it created itself, never one passed to `xc_interface_open`.
    pub destroy: Option<unsafe extern "C" fn(logger: *mut xentoollog_logger)>,
}

/// One cpupool as `xc_cpupool_getinfo` returns it (`xc_cpupoolinfo_t`, 24 bytes).
///
/// Never built by Rust code: libxenctrl allocates the struct *and* the map `cpumap` points
/// to in one block (the `xc_get_cpumap_size()` map bytes follow the struct), which only
/// `xc_cpupool_infofree` may release. Read it through [`crate::cpupool_info`], which copies
/// it out and frees it.
#[repr(C)]
#[derive(Debug)]
pub struct xc_cpupoolinfo_t {
    /// The pool's id (Pool-0 is 0).
    pub cpupool_id: u32,
    /// Its scheduler (`XEN_SCHEDULER_*`, e.g. [`XEN_SCHEDULER_CREDIT2`]).
    pub sched_id: u32,
    /// The number of domains in it.
    pub n_dom: u32,
    /// Its CPUs: `xc_get_cpumap_size()` bytes inside the same allocation.
    pub cpumap: xc_cpumap_t,
}

/// libxenctrl's name for [`xen_domctl_getdomaininfo`].
pub type xc_domaininfo_t = xen_domctl_getdomaininfo;
/// libxenctrl's name for [`xen_domctl_getvcpuinfo`].
pub type xc_vcpuinfo_t = xen_domctl_getvcpuinfo;
/// libxenctrl's name for [`xen_sysctl_physinfo`].
pub type xc_physinfo_t = xen_sysctl_physinfo;
/// libxenctrl's name for [`xen_sysctl_cputopo`].
pub type xc_cputopo_t = xen_sysctl_cputopo;
/// A CPU map buffer: exactly `xc_get_cpumap_size()` bytes, bit order as [`xenctl_bitmap`].
pub type xc_cpumap_t = *mut u8;
/// A NUMA node map buffer: exactly `xc_get_nodemap_size()` bytes, bit `i` = node `i`.
pub type xc_nodemap_t = *mut u8;

// Sizes and alignments, checked at compile time (tests/layout.rs checks every field too).
const _: () = assert!(size_of::<xenctl_bitmap>() == 16 && align_of::<xenctl_bitmap>() == 8);
const _: () = assert!(size_of::<xen_arch_domainconfig>() == 8);
const _: () = assert!(size_of::<xen_domctl_getdomaininfo>() == 112);
const _: () = assert!(size_of::<xen_domctl_vcpuaffinity>() == 40);
const _: () = assert!(size_of::<xen_domctl_getvcpuinfo>() == 24);
const _: () = assert!(size_of::<xen_domctl_nodeaffinity>() == 16);
const _: () = assert!(size_of::<xen_domctl_max_vcpus>() == 4);
const _: () = assert!(size_of::<xen_domctl_u>() == 128 && align_of::<xen_domctl_u>() == 8);
const _: () = assert!(size_of::<xen_domctl>() == 144 && align_of::<xen_domctl>() == 8);
const _: () = assert!(size_of::<xen_sysctl_physinfo>() == 112);
const _: () = assert!(size_of::<xen_sysctl_cputopo>() == 12);
const _: () = assert!(size_of::<xen_sysctl_cputopoinfo>() == 16);
const _: () = assert!(size_of::<xen_cpuid_leaf>() == 24 && align_of::<xen_cpuid_leaf>() == 4);
const _: () = assert!(size_of::<xen_msr_entry>() == 16 && align_of::<xen_msr_entry>() == 8);
const _: () = assert!(size_of::<xc_cpupoolinfo_t>() == 24 && align_of::<xc_cpupoolinfo_t>() == 8);
const _: () = assert!(size_of::<xentoollog_logger>() == 24 && align_of::<xentoollog_logger>() == 8);

// ---- releases and interface versions ----------------------------------------------------

/// A Xen release, `major.minor` (e.g. 4.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XenVersion {
    /// Major version (4).
    pub major: u32,
    /// Minor version (17).
    pub minor: u32,
}

impl XenVersion {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Decodes the value `xc_version(xch, XENVER_version, NULL)` returns:
    /// `(major << 16) | minor`. Negative values (errors) give `None`.
    pub fn from_xenver(raw: libc::c_int) -> Option<Self> {
        let raw = u32::try_from(raw).ok()?;
        Some(Self::new(raw >> 16, raw & 0xffff))
    }

    /// The soname of this release's libxenctrl, `libxenctrl.so.<major>.<minor>`.
    pub fn libxenctrl_soname(self) -> String {
        format!("libxenctrl.so.{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for XenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The interface versions one Xen release's hypervisor accepts. libxenctrl puts its own
/// release's values into every domctl/sysctl; the hypervisor answers a mismatch with
/// `EACCES`. So `EACCES` from every call usually means libxenctrl and the running
/// hypervisor come from different releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceVersions {
    /// The release.
    pub release: XenVersion,
    /// `XEN_DOMCTL_INTERFACE_VERSION` of that release.
    pub domctl: u32,
    /// `XEN_SYSCTL_INTERFACE_VERSION` of that release.
    pub sysctl: u32,
}

/// Interface versions of the releases whose layouts this crate states, newest first
/// (`XENVCPU_XEN_4_*_{DOMCTL,SYSCTL}_INTERFACE_VERSION` in the vendor header).
pub const INTERFACE_VERSIONS: &[InterfaceVersions] = &[
    iv(22, 0x18, 0x16),
    iv(21, 0x17, 0x16),
    iv(20, 0x17, 0x15),
    iv(19, 0x17, 0x15),
    iv(18, 0x16, 0x15),
    iv(17, 0x15, 0x15),
];

const fn iv(minor: u32, domctl: u32, sysctl: u32) -> InterfaceVersions {
    InterfaceVersions { release: XenVersion::new(4, minor), domctl, sysctl }
}

/// The interface versions of `release`, if it is one this crate knows.
pub fn interface_versions(release: XenVersion) -> Option<InterfaceVersions> {
    INTERFACE_VERSIONS.iter().copied().find(|v| v.release == release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_reason_and_vcpu_count_decode_fields() {
        let info = xen_domctl_getdomaininfo {
            flags: XEN_DOMINF_shutdown | (3 << XEN_DOMINF_shutdownshift),
            max_vcpu_id: 3,
            ..Default::default()
        };
        assert_eq!(info.shutdown_reason(), 3);
        assert_eq!(info.vcpu_count(), 4);
        let none = xen_domctl_getdomaininfo { max_vcpu_id: XEN_INVALID_MAX_VCPU_ID, ..Default::default() };
        assert_eq!(none.vcpu_count(), 0);
    }

    #[test]
    fn xenver_decodes_major_minor() {
        assert_eq!(XenVersion::from_xenver(0x0004_0011), Some(XenVersion::new(4, 17)));
        assert_eq!(XenVersion::from_xenver(-1), None);
        assert_eq!(XenVersion::new(4, 17).to_string(), "4.17");
        assert_eq!(XenVersion::new(4, 17).libxenctrl_soname(), "libxenctrl.so.4.17");
    }

    #[test]
    fn interface_versions_table_is_newest_first_and_covers_4_17_to_4_22() {
        let releases: Vec<u32> = INTERFACE_VERSIONS.iter().map(|v| v.release.minor).collect();
        assert_eq!(releases, [22, 21, 20, 19, 18, 17]);
        assert_eq!(interface_versions(XenVersion::new(4, 17)).map(|v| (v.domctl, v.sysctl)), Some((0x15, 0x15)));
        assert_eq!(interface_versions(XenVersion::new(4, 16)), None);
    }

    #[test]
    fn default_domctl_is_all_zero() {
        let d = xen_domctl::default();
        // SAFETY: `pad` spans the whole union and every bit pattern is a valid [u8; 128].
        let bytes = unsafe { d.u.pad };
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
