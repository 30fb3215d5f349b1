//! A domain's NUMA node affinity, and the advisory nodeset `placement='auto'` uses.

use crate::cpumap::CpuMap;
use crate::error::{Op, Result};
use crate::{Domain, HostInfo};

/// What `placement='auto'` should use for a domain: its NUMA node affinity, limited to the
/// nodes of the host, and whether that is every node of the host.
///
/// Pass [`nodes`](Self::nodes) to [`crate::placement::Placement::resolve`] as the advisory
/// nodeset. When [`is_all_nodes`](Self::is_all_nodes) is true the node affinity says
/// nothing a placement could use (Xen's default for a domain whose vCPUs may run anywhere):
/// the caller should say so, e.g. with [`ALL_NODES_WARNING`](Self::ALL_NODES_WARNING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryNodeset {
    nodes: CpuMap,
    all_nodes: bool,
}

impl AdvisoryNodeset {
    /// The warning for an advisory nodeset of every node.
    pub const ALL_NODES_WARNING: &'static str = "node affinity is all nodes; placement='auto' uses all nodes";

    /// The advisory nodeset of a domain whose node affinity is `affinity` (node ids, as
    /// [`Domain::node_affinity`] returns them) on `host`.
    ///
    /// The host's nodes are those Xen reports for its CPUs (online or not, see
    /// [`crate::hypervisor::CpuTopology`]). Node ids in `affinity` that no CPU has (past the
    /// host's nodes, or nodes of memory only) are dropped: no vCPU can be placed there. The
    /// result covers every node when each of the host's nodes is in `affinity`; an empty
    /// result (an affinity of CPU-less nodes only) is left for
    /// [`crate::placement::Placement::resolve`] to refuse.
    pub fn new(affinity: &CpuMap, host: &HostInfo) -> AdvisoryNodeset {
        let host_nodes: CpuMap = host.cpus.iter().filter_map(|t| t.node).map(|n| n as usize).collect();
        AdvisoryNodeset { nodes: affinity.intersection(&host_nodes), all_nodes: host_nodes.is_subset(affinity) }
    }

    /// The NUMA node ids to place the domain on.
    pub fn nodes(&self) -> &CpuMap {
        &self.nodes
    }

    /// The NUMA node ids to place the domain on, by value.
    pub fn into_nodes(self) -> CpuMap {
        self.nodes
    }

    /// Whether the nodeset is every node of the host: then `placement='auto'` places the
    /// vCPUs on every (online) CPU, as if there were no advice.
    pub fn is_all_nodes(&self) -> bool {
        self.all_nodes
    }

    /// [`ALL_NODES_WARNING`](Self::ALL_NODES_WARNING) when the nodeset is every node,
    /// `None` otherwise.
    pub fn warning(&self) -> Option<&'static str> {
        self.all_nodes.then_some(Self::ALL_NODES_WARNING)
    }
}

impl Domain {
    /// The NUMA nodes the domain has affinity with (`xc_domain_node_getaffinity`), as node
    /// ids. Xen derives them from the vCPUs' affinity unless the toolstack set them; bits
    /// for node ids the host does not have may be set (Xen's "all nodes").
    ///
    /// # Errors
    /// [`crate::Error::DomainGone`], or a failed hypercall ([`Op::NodeAffinity`]).
    pub fn node_affinity(&self) -> Result<CpuMap> {
        self.host().hypervisor().node_affinity(self.id().get()).map_err(|e| self.fail(Op::NodeAffinity, None, e))
    }

    /// The advisory nodeset for `placement='auto'`: the domain's
    /// [`node_affinity`](Self::node_affinity) on this host ([`AdvisoryNodeset::new`] with
    /// [`crate::Host::info`]).
    ///
    /// # Errors
    /// Those of [`node_affinity`](Self::node_affinity) and [`crate::Host::info`].
    pub fn advisory_nodeset(&self) -> Result<AdvisoryNodeset> {
        let affinity = self.node_affinity()?;
        Ok(AdvisoryNodeset::new(&affinity, &self.host().info()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::{CpuTopology, PhysInfo};

    /// A host whose CPU `i` is on node `nodes[i]` (`None`: no node reported).
    fn host(nodes: &[Option<u32>]) -> HostInfo {
        let cpus = nodes.iter().map(|&node| CpuTopology { core: Some(0), socket: Some(0), node }).collect();
        HostInfo { phys: PhysInfo::default(), cpus, online: CpuMap::all(nodes.len()) }
    }

    fn map(list: &str) -> CpuMap {
        list.parse().unwrap()
    }

    #[test]
    fn every_node_of_the_host_is_all_nodes_and_extra_bits_are_dropped() {
        let two = host(&[Some(0), Some(0), Some(1), Some(1)]);
        let all = AdvisoryNodeset::new(&map("0-7"), &two);
        assert_eq!((all.nodes(), all.is_all_nodes()), (&map("0-1"), true));
        assert_eq!(all.warning(), Some("node affinity is all nodes; placement='auto' uses all nodes"));
        let exact = AdvisoryNodeset::new(&map("0-1"), &two);
        assert_eq!((exact.nodes(), exact.is_all_nodes()), (&map("0-1"), true));
    }

    #[test]
    fn some_nodes_are_kept_as_they_are() {
        let three = host(&[Some(0), Some(1), Some(2), None]);
        let one = AdvisoryNodeset::new(&map("1"), &three);
        assert_eq!((one.nodes(), one.is_all_nodes(), one.warning()), (&map("1"), false, None));
        assert_eq!(AdvisoryNodeset::new(&map("0,2,5"), &three).into_nodes(), map("0,2"));
    }

    #[test]
    fn an_affinity_of_cpu_less_nodes_is_empty_not_all() {
        let holes = host(&[Some(0), Some(2)]);
        let none = AdvisoryNodeset::new(&map("1,3"), &holes);
        assert!(none.nodes().is_empty());
        assert!(!none.is_all_nodes());
        // Node 1 has no CPU: {0, 2} is every node of this host.
        assert!(AdvisoryNodeset::new(&map("0,2"), &holes).is_all_nodes());
    }
}
