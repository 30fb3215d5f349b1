//! [`PlacementError`]: what can be wrong with a placement, named by its element.

use crate::cpumap::{CpuListError, CpuMap};

use super::MAX_VCPUS;

/// A placement that cannot be parsed, built or resolved.
///
/// Every variant names the element (or attribute) at fault and, where it can, what would
/// have been accepted. The parser and the builder return the structural errors (the ones
/// that need no host); [`super::Placement::resolve`] adds those that need the host's
/// CPUs and NUMA nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// The text is not well-formed XML. The position is 1-based and counts characters.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Xml {
        /// The line of the error.
        line: u32,
        /// The column of the error.
        column: u32,
        /// What the XML parser found wrong.
        message: String,
    },
    /// There is no `<vcpu>` element, so the number of vCPUs is unknown.
    #[error("no <vcpu> element: the domain must give its number of vCPUs as <vcpu>N</vcpu>")]
    MissingVcpu,
    /// An element that may appear once (`<vcpu>`, `<cputune>`, `<emulatorpin>`) appears
    /// more than once.
    #[error("more than one {element} element: at most one is allowed")]
    DuplicateElement {
        /// The element, e.g. `<emulatorpin>`.
        element: String,
    },
    /// The `<vcpu>` text is not a vCPU count from 1 to [`MAX_VCPUS`].
    #[error("<vcpu> count {value:?} is invalid: it must be a whole number from 1 to {MAX_VCPUS}")]
    InvalidVcpuCount {
        /// The text as written (or the number given to the builder).
        value: String,
    },
    /// The `current` attribute of `<vcpu>` is not a count from 1 to the maximum.
    #[error(
        "<vcpu current={value:?}> is invalid: the number of vCPUs online at start must be a \
         whole number from 1 to the maximum, {max_vcpus}"
    )]
    InvalidCurrent {
        /// The attribute as written (or the number given to the builder).
        value: String,
        /// The domain's maximum vCPU count.
        max_vcpus: u32,
    },
    /// The `placement` attribute of `<vcpu>` is neither `static` nor `auto`.
    #[error("<vcpu placement={value:?}> is not a placement mode: expected 'static' or 'auto'")]
    UnknownPlacement {
        /// The attribute as written.
        value: String,
    },
    /// An element lacks an attribute it needs (`<vcpupin vcpu cpuset>`,
    /// `<emulatorpin cpuset>`).
    #[error("{element} has no {attribute} attribute, which it requires")]
    MissingAttribute {
        /// The element, e.g. `<vcpupin vcpu='2'>`.
        element: String,
        /// The missing attribute.
        attribute: &'static str,
    },
    /// The `vcpu` attribute of a `<vcpupin>` is not a vCPU number.
    #[error("{element} does not name a vCPU: {value:?} is not a vCPU number (expected 0, 1, 2, ...)")]
    InvalidVcpuId {
        /// The element.
        element: String,
        /// The attribute as written.
        value: String,
    },
    /// A `<vcpupin>` for a vCPU the domain does not have.
    #[error(
        "<vcpupin vcpu='{vcpu}'> names a vCPU the domain does not have: its vCPUs are 0-{} \
         (<vcpu>{max_vcpus}</vcpu>)",
        .max_vcpus.saturating_sub(1)
    )]
    VcpupinOutOfRange {
        /// The vCPU named.
        vcpu: u32,
        /// The domain's maximum vCPU count.
        max_vcpus: u32,
    },
    /// Two `<vcpupin>` elements for the same vCPU.
    #[error("vCPU {vcpu} has more than one <vcpupin vcpu='{vcpu}'>: each vCPU may have at most one")]
    DuplicateVcpupin {
        /// The vCPU.
        vcpu: u32,
    },
    /// `placement='auto'` together with `<emulatorpin>`, which libvirt refuses.
    #[error(
        "<vcpu placement='auto'> cannot be combined with <emulatorpin>: with automatic \
         placement the emulator runs on the CPUs of the advisory nodeset (remove \
         <emulatorpin>, or use placement='static')"
    )]
    AutoWithEmulatorpin,
    /// `placement='auto'` but no advisory nodeset was given to resolve it with.
    #[error(
        "<vcpu placement='auto'> needs an advisory NUMA nodeset to choose CPUs from, and none \
         was given (give one, or use placement='static')"
    )]
    AutoWithoutNodeset,
    /// The advisory nodeset has no node in it.
    #[error("the advisory nodeset is empty: it must name at least one NUMA node")]
    EmptyNodeset,
    /// The advisory nodeset names a node the host does not have.
    #[error("the advisory nodeset names node {node}, which the host does not have ({})", nodes_phrase(*.nr_nodes))]
    UnknownNode {
        /// The first missing node.
        node: usize,
        /// How many nodes (with an online CPU) the host has.
        nr_nodes: usize,
    },
    /// The nodes of the advisory nodeset have no online CPU.
    #[error("the advisory nodeset {nodeset} has no online CPU: it must name a node with online CPUs")]
    NodesetWithoutCpus {
        /// The nodeset (node ids).
        nodeset: CpuMap,
    },
    /// A cpuset that is not a valid cpu-list for this host (syntax, an unknown node, or
    /// CPUs beyond the host).
    #[error("invalid cpuset in {element}: {source}")]
    Cpuset {
        /// The element, e.g. `<vcpupin vcpu='2'>`.
        element: String,
        /// What is wrong with the list.
        source: CpuListError,
    },
    /// A cpuset that selects no CPU, such as `0,^0`.
    #[error("the cpuset {cpuset:?} of {element} selects no CPU: it must name at least one host CPU")]
    EmptyCpuset {
        /// The element.
        element: String,
        /// The cpuset as written.
        cpuset: String,
    },
    /// A cpuset whose CPUs are all offline: Xen refuses such a hard affinity (`EINVAL`).
    #[error(
        "the cpuset {cpuset:?} of {element} names only offline CPUs: it must include an \
         online CPU (online: {online})"
    )]
    NoOnlineCpu {
        /// The element.
        element: String,
        /// The cpuset as written.
        cpuset: String,
        /// The host's online CPUs.
        online: CpuMap,
    },
    /// A vCPU number the domain does not have, in a hotplug event.
    #[error("the domain has no vCPU {vcpu}: its vCPUs are 0-{}", .max_vcpus.saturating_sub(1))]
    VcpuOutOfRange {
        /// The vCPU named.
        vcpu: usize,
        /// The domain's maximum vCPU count.
        max_vcpus: u32,
    },
}

fn nodes_phrase(nr_nodes: usize) -> String {
    match nr_nodes {
        0 => "it reports no NUMA node with an online CPU".to_owned(),
        1 => "it has node 0 only".to_owned(),
        n => format!("it has nodes 0-{}", n - 1),
    }
}
