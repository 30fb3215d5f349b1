//! xenvcpu: manage the virtual CPUs of Xen domains from dom0.
//!
//! Layers, top to bottom (see README.md):
//! - [`Host`] and [`Domain`]: what users call — vCPU info, affinity (pin), the vCPU
//!   maximum, vCPU availability through the host's xenstore, placement, and the
//!   libvirt-shaped calls under [`Domain::libvirt`] (`pin_vcpu`, `get_vcpus`).
//! - [`process`]: the CPU affinity of dom0 processes (the device model).
//! - [`hypervisor`]: the hypercall-level operations behind the [`hypervisor::Hypervisor`]
//!   trait, with the real libxenctrl backend and a simulated host.
//! - [`xenstore`]: the xenstore client and a simulated store.
//! - [`cpu`]: CPU features (Xen's featureset and names), a guest's `<cpu>`, migration checks.
//! - [`cpumap`]: CPU maps and their translations — the hot path, depending on nothing else.
//!
//! Every failure is an [`Error`] a caller can match on; the library never prints.

pub mod agent;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cpu;
pub mod cpumap;
mod domain;
mod error;
mod host;
pub mod hypervisor;
mod ids;
pub mod placement;
mod pool;
pub mod process;
#[cfg(feature = "sim")]
pub mod sim;
pub mod xenstore;
mod xml;

pub use domain::{
    AdvisoryNodeset, AffinityRequest, AvailabilityChange, Domain, Dropped, Effective, Libvirt, LibvirtVcpuInfo,
    VcpuInfo, VcpuMapFlag, VcpuMaps, VcpuState,
};
pub use error::{Error, MapKind, NoEmulatorReason, Op, Result, Uuid};
pub use host::{Host, HostInfo};
pub use hypervisor::{CpuVendor, DomainCpuPolicy, FeaturesetKind, XenCpuPolicy};
pub use ids::{DomId, PhysCpu, VcpuId, VcpuSet};
pub use pool::{pool_name_path, Pool, Scheduler};
/// libxenctrl's messages and xenvcpu's warnings are never printed by the library: install a
/// hook to see them (see [`xen_sys::set_log_hook`]). `secure_env_var` reads an environment
/// override unless the process is set-user-ID.
pub use xen_sys::{secure_env_var, set_log_hook, LogLevel};

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
