//! Placement policy: which physical CPUs each vCPU and the emulator may run on, from
//! libvirt's `<vcpu>`, `<vcpupin>` and `<emulatorpin>` elements.
//!
//! This module is pure: it reads XML (or a builder) and resolves against a
//! [`HostInfo`](crate::HostInfo) value; it calls no hypervisor. Applying the result is the
//! domain API's job.
//!
//! # The rules
//! - `<vcpu cpuset='…'>` is the default set of physical CPUs for every vCPU **and** for
//!   the emulator (the device model).
//! - `<vcpupin vcpu='N' cpuset='…'/>` overrides that default for vCPU N only. A vCPU with
//!   no `<vcpupin>` inherits `<vcpu cpuset>`; with neither, it may run on every host CPU.
//! - `<emulatorpin cpuset='…'/>` overrides `<vcpu cpuset>` for the emulator only; with
//!   neither, the emulator may run on every host CPU.
//! - `placement='auto'` takes the CPUs of an advisory NUMA nodeset instead of
//!   `<vcpu cpuset>` (which is then ignored, not even checked); `<vcpupin>` still wins for
//!   its vCPU. `placement='auto'` with `<emulatorpin>` is an error.
//! - Hotplug: see [`LivePlacement`]. A vCPU brought online inherits `<vcpu cpuset>` unless
//!   it has a `<vcpupin>`; a vCPU taken offline loses its `<vcpupin>`.
//! - Every cpuset is checked against the host when resolved: valid syntax, no CPU beyond
//!   the host, at least one CPU, and at least one *online* CPU (Xen refuses a hard
//!   affinity with none).
//!
//! "Every host CPU" is CPUs `0..host.nr_cpus()`, offline ones included, as Xen's own
//! default affinity is; Xen's effective affinity drops the offline ones.
//!
//! ```
//! use xenvcpu::placement::{Placement, Source};
//! # use xenvcpu::hypervisor::{CpuTopology, PhysInfo};
//! # let topo = CpuTopology { core: Some(0), socket: Some(0), node: Some(0) };
//! # let host = xenvcpu::HostInfo {
//! #     phys: PhysInfo { nr_cpus: 4, max_cpu_id: 3, nr_nodes: 1, ..PhysInfo::default() },
//! #     cpus: vec![topo; 4],
//! #     online: xenvcpu::cpumap::CpuMap::all(4),
//! # };
//! let placement = Placement::from_xml(
//!     "<vcpu cpuset='0-1'>2</vcpu>
//!      <cputune><vcpupin vcpu='1' cpuset='3'/></cputune>",
//! )?;
//! // `host` is the HostInfo of a 4-CPU host (e.g. from `Host::info`).
//! let resolved = placement.resolve(&host, None)?;
//! assert_eq!(resolved.vcpus[0].cpus.to_string(), "0-1");
//! assert_eq!(resolved.vcpus[0].source, Source::VcpuCpuset);
//! assert_eq!(resolved.vcpus[1].cpus.to_string(), "3");
//! assert_eq!(resolved.emulator.1, Source::VcpuCpuset);
//! # Ok::<(), xenvcpu::placement::PlacementError>(())
//! ```

mod error;
mod live;
mod resolve;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use error::PlacementError;
pub use live::LivePlacement;
pub use resolve::{Resolved, Source, VcpuPlacement};

/// The largest vCPU count accepted. Far above any Xen guest (`HVM_MAX_VCPUS` is 128 and
/// Xen has at most 4095 physical CPUs); it only keeps a typo in `<vcpu>` from allocating
/// gigabytes when resolved.
pub const MAX_VCPUS: u32 = 16384;

/// How the default CPUs of the vCPUs are chosen: the `placement` attribute of `<vcpu>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlacementMode {
    /// From `<vcpu cpuset>`, or every host CPU without it (libvirt's default).
    #[default]
    Static,
    /// From the CPUs of an advisory NUMA nodeset (numad's advice in libvirt).
    Auto,
}

impl PlacementMode {
    /// The attribute value: `static` or `auto`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PlacementMode::Static => "static",
            PlacementMode::Auto => "auto",
        }
    }
}

impl fmt::Display for PlacementMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlacementMode {
    type Err = PlacementError;

    /// Parses `static` or `auto` (exactly, as libvirt does).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "static" => Ok(PlacementMode::Static),
            "auto" => Ok(PlacementMode::Auto),
            _ => Err(PlacementError::UnknownPlacement { value: s.to_owned() }),
        }
    }
}

/// A domain's placement configuration: `<vcpu>` and the pins of `<cputune>`.
///
/// Cpusets stay the strings written in the XML until [`Placement::resolve`], because
/// `all` and `node:N` need the host's size and NUMA nodes. Get one from
/// [`Placement::from_xml`] or [`Placement::builder`], which check everything that needs
/// no host; the fields are public for inspection, and `resolve` checks them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The maximum number of vCPUs: the text of `<vcpu>`.
    pub max_vcpus: u32,
    /// How many vCPUs are online at start (`<vcpu current>`); `None` means all of them.
    pub current: Option<u32>,
    /// `<vcpu placement>`.
    pub mode: PlacementMode,
    /// `<vcpu cpuset>` as written: the default CPUs of every vCPU and the emulator.
    pub cpuset: Option<String>,
    /// `<vcpupin vcpu cpuset>` as written, by vCPU.
    pub vcpupins: BTreeMap<u32, String>,
    /// `<emulatorpin cpuset>` as written.
    pub emulatorpin: Option<String>,
}

impl Placement {
    /// Reads the placement of a whole `<domain>` document, or of a fragment holding
    /// `<vcpu>` and `<cputune>` (one or several top-level elements).
    ///
    /// Only `<vcpu>` (its text and its `placement`, `cpuset` and `current` attributes)
    /// and, in `<cputune>`, `<vcpupin>` and `<emulatorpin>` are read; everything else is
    /// ignored, including the `<vcpu>` elements inside `<vcpus>`. `placement` absent means
    /// static (libvirt's inheritance from `<numatune>` is not modelled).
    ///
    /// # Errors
    /// [`PlacementError::Xml`] with the line and column; [`PlacementError::MissingVcpu`];
    /// [`PlacementError::DuplicateElement`] for a second `<vcpu>`, `<cputune>` or
    /// `<emulatorpin>`; [`PlacementError::InvalidVcpuCount`];
    /// [`PlacementError::InvalidCurrent`]; [`PlacementError::UnknownPlacement`];
    /// [`PlacementError::MissingAttribute`]; [`PlacementError::InvalidVcpuId`];
    /// [`PlacementError::VcpupinOutOfRange`]; [`PlacementError::DuplicateVcpupin`];
    /// [`PlacementError::AutoWithEmulatorpin`]. Cpusets are checked by
    /// [`Placement::resolve`].
    pub fn from_xml(xml: &str) -> Result<Placement, PlacementError> {
        xml::parse(xml)
    }

    /// Starts a placement of `max_vcpus` vCPUs: static, all online, no cpuset, no pins.
    ///
    /// ```
    /// use xenvcpu::placement::Placement;
    /// let p = Placement::builder(4).cpuset("0-3").vcpupin(1, "2").current(2).build()?;
    /// assert_eq!(p.vcpupins[&1], "2");
    /// assert!(Placement::builder(4).vcpupin(4, "0").build().is_err());
    /// # Ok::<(), xenvcpu::placement::PlacementError>(())
    /// ```
    pub fn builder(max_vcpus: u32) -> PlacementBuilder {
        PlacementBuilder {
            placement: Placement {
                max_vcpus,
                current: None,
                mode: PlacementMode::Static,
                cpuset: None,
                vcpupins: BTreeMap::new(),
                emulatorpin: None,
            },
            error: None,
        }
    }

    /// The number of vCPUs online at start: `current`, or all of them.
    pub fn online_at_start(&self) -> u32 {
        self.current.unwrap_or(self.max_vcpus)
    }

    /// Checks everything that needs no host: the vCPU count, `current`, the vCPUs named
    /// by the pins, and `placement='auto'` without `<emulatorpin>`.
    ///
    /// # Errors
    /// [`PlacementError::InvalidVcpuCount`], [`PlacementError::InvalidCurrent`],
    /// [`PlacementError::VcpupinOutOfRange`] (the lowest such vCPU),
    /// [`PlacementError::AutoWithEmulatorpin`].
    pub fn validate(&self) -> Result<(), PlacementError> {
        if self.max_vcpus == 0 || self.max_vcpus > MAX_VCPUS {
            return Err(PlacementError::InvalidVcpuCount { value: self.max_vcpus.to_string() });
        }
        if let Some(current) = self.current {
            if current == 0 || current > self.max_vcpus {
                return Err(PlacementError::InvalidCurrent { value: current.to_string(), max_vcpus: self.max_vcpus });
            }
        }
        if let Some((&vcpu, _)) = self.vcpupins.range(self.max_vcpus..).next() {
            return Err(PlacementError::VcpupinOutOfRange { vcpu, max_vcpus: self.max_vcpus });
        }
        if self.mode == PlacementMode::Auto && self.emulatorpin.is_some() {
            return Err(PlacementError::AutoWithEmulatorpin);
        }
        Ok(())
    }
}

/// Builds a [`Placement`] in code; [`PlacementBuilder::build`] makes the parser's checks.
///
/// The first misuse (a second pin for one vCPU, a second emulator pin) is remembered and
/// returned by `build`.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PlacementBuilder {
    placement: Placement,
    error: Option<PlacementError>,
}

impl PlacementBuilder {
    /// Sets `<vcpu cpuset>`: the default CPUs of every vCPU and of the emulator.
    pub fn cpuset(mut self, cpuset: impl Into<String>) -> Self {
        self.placement.cpuset = Some(cpuset.into());
        self
    }

    /// Adds `<vcpupin vcpu='vcpu' cpuset='cpuset'/>`. A second pin for the same vCPU makes
    /// `build` fail with [`PlacementError::DuplicateVcpupin`].
    pub fn vcpupin(mut self, vcpu: u32, cpuset: impl Into<String>) -> Self {
        if self.placement.vcpupins.insert(vcpu, cpuset.into()).is_some() {
            self.error.get_or_insert(PlacementError::DuplicateVcpupin { vcpu });
        }
        self
    }

    /// Sets `<emulatorpin cpuset>`. A second call makes `build` fail with
    /// [`PlacementError::DuplicateElement`].
    pub fn emulatorpin(mut self, cpuset: impl Into<String>) -> Self {
        if self.placement.emulatorpin.replace(cpuset.into()).is_some() {
            self.error.get_or_insert(PlacementError::DuplicateElement { element: "<emulatorpin>".to_owned() });
        }
        self
    }

    /// Sets `placement='auto'`: the default CPUs come from the advisory nodeset.
    pub fn auto(self) -> Self {
        self.mode(PlacementMode::Auto)
    }

    /// Sets the placement mode.
    pub fn mode(mut self, mode: PlacementMode) -> Self {
        self.placement.mode = mode;
        self
    }

    /// Sets `<vcpu current>`: how many vCPUs (0 to n-1) are online at start.
    pub fn current(mut self, current: u32) -> Self {
        self.placement.current = Some(current);
        self
    }

    /// The placement, checked as [`Placement::from_xml`] checks it.
    ///
    /// # Errors
    /// The first builder misuse, then those of [`Placement::validate`].
    pub fn build(self) -> Result<Placement, PlacementError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.placement.validate()?;
        Ok(self.placement)
    }
}
