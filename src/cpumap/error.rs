//! Errors of the cpumap layer.

use super::CpuMap;

/// A translation between map formats that would lose information, or was given
/// buffers of the wrong size.
///
/// Every translation in [`crate::cpumap`] checks before it writes: when one of these is
/// returned, the destination buffer is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuMapError {
    /// Set bits of the source have no place in the destination: they name CPUs at or
    /// beyond `limit` (the host's CPU count, or the destination's capacity in bits).
    #[error("{} {} would be dropped: only CPUs below {limit} fit{}", cpu_noun(.cpus), .cpus, vcpu_suffix(*.vcpu))]
    CpusDropped {
        /// The CPUs that would have been dropped.
        cpus: CpuMap,
        /// The first CPU number that does not fit.
        limit: usize,
        /// For the array forms, the vCPU whose map held them.
        vcpu: Option<usize>,
    },
    /// A buffer is shorter than the sizes given for it.
    #[error("{what} buffer is {got} bytes; {needed} bytes are needed")]
    BufferTooSmall {
        /// Which buffer: "source" or "destination".
        what: &'static str,
        /// The bytes needed (`len * count`).
        needed: usize,
        /// The bytes given.
        got: usize,
    },
    /// A size computation overflowed `usize`.
    #[error("map size overflows: {len} bytes x {count} maps")]
    SizeOverflow {
        /// Length of one map in bytes.
        len: usize,
        /// Number of maps.
        count: usize,
    },
}

fn cpu_noun(cpus: &CpuMap) -> &'static str {
    if cpus.count() == 1 {
        "CPU"
    } else {
        "CPUs"
    }
}

fn vcpu_suffix(vcpu: Option<usize>) -> String {
    vcpu.map(|v| format!(" (map of vCPU {v})")).unwrap_or_default()
}

/// Where a cpu-list token stands in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPos {
    /// The token as written (whitespace around it trimmed).
    pub token: String,
    /// Its 1-based position among the comma-separated tokens.
    pub index: usize,
    /// The byte offset of its first character in the input.
    pub offset: usize,
}

impl std::fmt::Display for TokenPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token {} {:?} (byte {})", self.index, self.token, self.offset)
    }
}

/// A cpu-list (`0-3,^2,node:1,all`) that could not be parsed or does not fit the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    /// Two commas in a row, or a leading or trailing comma.
    #[error("cpu-list {0}: empty entry (expected N, N-M, ^N, all or node:N)")]
    EmptyToken(TokenPos),
    /// Something that is not a number, a range, `all` or a node list.
    #[error("cpu-list {0}: not a CPU number or range (expected N, N-M, ^N, all or node:N)")]
    Junk(TokenPos),
    /// A range whose end is below its start.
    #[error("cpu-list {pos}: range end {end} is below its start {start}")]
    ReversedRange {
        /// The token.
        pos: TokenPos,
        /// The range start.
        start: usize,
        /// The range end.
        end: usize,
    },
    /// A number too large to be a CPU or node number (over `limit`).
    #[error("cpu-list {pos}: number is too large (the largest accepted is {limit})")]
    Overflow {
        /// The token.
        pos: TokenPos,
        /// The largest number accepted.
        limit: usize,
    },
    /// `^all` or `^nodes:all`: removing everything is not a meaningful list.
    #[error("cpu-list {0}: \"^\" cannot be combined with \"all\"")]
    NegatedAll(TokenPos),
    /// `all` with no host size to expand it to.
    #[error("cpu-list {0}: \"all\" needs the host's CPU count, which was not given")]
    AllWithoutHost(TokenPos),
    /// A `node:`/`nodes:` list with no NUMA topology to resolve it.
    #[error("cpu-list {0}: node lists need the host's NUMA topology, which was not given")]
    NoTopology(TokenPos),
    /// A node number the topology does not have.
    #[error("cpu-list {pos}: node {node} does not exist (the host has {nr_nodes} node(s): 0-{})", .nr_nodes.saturating_sub(1))]
    UnknownNode {
        /// The token.
        pos: TokenPos,
        /// The first missing node.
        node: usize,
        /// How many nodes the host has.
        nr_nodes: usize,
    },
    /// CPUs the host does not have (xl silently drops these; we refuse them).
    #[error("cpu-list {pos}: {} {cpus} beyond the host, which has CPUs 0-{}", if .cpus.count() == 1 { "CPU" } else { "CPUs" }, .host_cpus.saturating_sub(1))]
    BeyondHost {
        /// The token.
        pos: TokenPos,
        /// The CPUs that do not exist.
        cpus: CpuMap,
        /// The host's CPU count (`max_cpu_id + 1`).
        host_cpus: usize,
    },
}

impl CpuListError {
    /// The token the error is about.
    pub fn pos(&self) -> &TokenPos {
        match self {
            Self::EmptyToken(p)
            | Self::Junk(p)
            | Self::NegatedAll(p)
            | Self::AllWithoutHost(p)
            | Self::NoTopology(p) => p,
            Self::ReversedRange { pos, .. }
            | Self::Overflow { pos, .. }
            | Self::UnknownNode { pos, .. }
            | Self::BeyondHost { pos, .. } => pos,
        }
    }
}
