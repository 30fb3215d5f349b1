//! Resolving a [`Placement`] against a host: the CPU map of every vCPU and the emulator.

use std::fmt;

use crate::cpumap::{CpuListContext, CpuMap};
use crate::HostInfo;

use super::{Placement, PlacementError, PlacementMode};

/// Where a resolved CPU map came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The vCPU's own `<vcpupin>`.
    Vcpupin,
    /// The default of `<vcpu cpuset>`.
    VcpuCpuset,
    /// `<emulatorpin>` (the emulator only).
    Emulatorpin,
    /// The CPUs of the advisory nodeset (`placement='auto'`).
    AdvisoryNodeset,
    /// Nothing was configured: every host CPU.
    AllCpus,
}

impl Source {
    /// A short description, as the dry-run table shows it.
    pub const fn describe(self) -> &'static str {
        match self {
            Source::Vcpupin => "<vcpupin>",
            Source::VcpuCpuset => "<vcpu cpuset>",
            Source::Emulatorpin => "<emulatorpin>",
            Source::AdvisoryNodeset => "advisory nodeset",
            Source::AllCpus => "all host CPUs",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The CPUs one vCPU may run on (its hard affinity), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuPlacement {
    /// The vCPU.
    pub vcpu: crate::VcpuId,
    /// The physical CPUs it may run on, as configured (offline CPUs included).
    pub cpus: CpuMap,
    /// Where `cpus` came from.
    pub source: Source,
}

/// A placement resolved against a host: a CPU map for every vCPU and for the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Every vCPU `0..max_vcpus`, in order, online at start or not.
    pub vcpus: Vec<VcpuPlacement>,
    /// The emulator's (device model's) CPUs, and where they came from.
    pub emulator: (CpuMap, Source),
}

impl Resolved {
    /// The placement of one vCPU, if the domain has it.
    pub fn vcpu(&self, vcpu: crate::VcpuId) -> Option<&VcpuPlacement> {
        self.vcpus.get(vcpu.index())
    }

    /// A table for people: one row per vCPU (`vCPU`, `CPUs`, `from`) and a last row for
    /// the emulator.
    ///
    /// ```text
    /// vCPU      CPUs  from
    /// 0         0-3   <vcpu cpuset>
    /// 1         5     <vcpupin>
    /// emulator  0-3   <vcpu cpuset>
    /// ```
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 3]> = Vec::with_capacity(self.vcpus.len() + 2);
        rows.push(["vCPU".into(), "CPUs".into(), "from".into()]);
        for v in &self.vcpus {
            rows.push([v.vcpu.to_string(), v.cpus.to_string(), v.source.to_string()]);
        }
        rows.push(["emulator".into(), self.emulator.0.to_string(), self.emulator.1.to_string()]);
        let width = |col: usize| rows.iter().map(|r| r[col].chars().count()).max().unwrap_or(0);
        let (w0, w1) = (width(0), width(1));
        let mut out = String::new();
        for [a, b, c] in &rows {
            out.push_str(&format!("{a:<w0$}  {b:<w1$}  {c}\n"));
        }
        out
    }
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table())
    }
}

impl Placement {
    /// Resolves the placement against the host: the CPUs of every vCPU `0..max_vcpus` and
    /// of the emulator, each with its [`Source`].
    ///
    /// Cpusets are cpu-lists read with the host's size and NUMA nodes
    /// (`CpuListContext::new().host_cpus(host.nr_cpus()).nodes(&host.node_cpus())`), so
    /// `all` and `node:N` work. `advisory_nodeset` holds NUMA node ids; it is used only
    /// with `placement='auto'` (and ignored otherwise), where it replaces `<vcpu cpuset>`.
    ///
    /// # Errors
    /// Those of [`Placement::validate`]; [`PlacementError::AutoWithoutNodeset`],
    /// [`PlacementError::EmptyNodeset`], [`PlacementError::UnknownNode`],
    /// [`PlacementError::NodesetWithoutCpus`] for the advisory nodeset; and for each cpuset
    /// used, [`PlacementError::Cpuset`] (syntax, unknown node, CPUs beyond the host),
    /// [`PlacementError::EmptyCpuset`] and [`PlacementError::NoOnlineCpu`], naming the
    /// element.
    pub fn resolve(&self, host: &HostInfo, advisory_nodeset: Option<&CpuMap>) -> Result<Resolved, PlacementError> {
        self.validate()?;
        let nodes = host.node_cpus();
        let online = host.online_cpus();
        let ctx = CpuListContext::new().host_cpus(host.nr_cpus()).nodes(&nodes);
        let cpuset = |element: &dyn Fn() -> String, list: &str| -> Result<CpuMap, PlacementError> {
            let cpus = ctx.parse(list).map_err(|source| PlacementError::Cpuset { element: element(), source })?;
            if cpus.is_empty() {
                return Err(PlacementError::EmptyCpuset { element: element(), cpuset: list.to_owned() });
            }
            if cpus.intersection(&online).is_empty() {
                return Err(PlacementError::NoOnlineCpu {
                    element: element(),
                    cpuset: list.to_owned(),
                    online: online.clone(),
                });
            }
            Ok(cpus)
        };

        let default = match (self.mode, &self.cpuset) {
            (PlacementMode::Auto, _) => {
                let nodeset = advisory_nodeset.ok_or(PlacementError::AutoWithoutNodeset)?;
                (nodeset_cpus(nodeset, &nodes)?, Source::AdvisoryNodeset)
            }
            (PlacementMode::Static, Some(list)) => (cpuset(&|| "<vcpu>".to_owned(), list)?, Source::VcpuCpuset),
            (PlacementMode::Static, None) => (CpuMap::all(host.nr_cpus()), Source::AllCpus),
        };

        let mut vcpus = Vec::with_capacity(self.max_vcpus as usize);
        for vcpu in 0..self.max_vcpus {
            let (cpus, source) = match self.vcpupins.get(&vcpu) {
                Some(list) => (cpuset(&|| format!("<vcpupin vcpu='{vcpu}'>"), list)?, Source::Vcpupin),
                None => default.clone(),
            };
            vcpus.push(VcpuPlacement { vcpu: crate::VcpuId(vcpu), cpus, source });
        }
        let emulator = match &self.emulatorpin {
            // validate() has refused <emulatorpin> with placement='auto'.
            Some(list) => (cpuset(&|| "<emulatorpin>".to_owned(), list)?, Source::Emulatorpin),
            None => default,
        };
        Ok(Resolved { vcpus, emulator })
    }
}

/// The online CPUs of the nodes in `nodeset`; `nodes[i]` holds node i's CPUs.
fn nodeset_cpus(nodeset: &CpuMap, nodes: &[CpuMap]) -> Result<CpuMap, PlacementError> {
    if nodeset.is_empty() {
        return Err(PlacementError::EmptyNodeset);
    }
    let mut cpus = CpuMap::new();
    for node in nodeset {
        let node_cpus = nodes.get(node).ok_or(PlacementError::UnknownNode { node, nr_nodes: nodes.len() })?;
        cpus = cpus.union(node_cpus);
    }
    if cpus.is_empty() {
        return Err(PlacementError::NodesetWithoutCpus { nodeset: nodeset.clone() });
    }
    Ok(cpus)
}
