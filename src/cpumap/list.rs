//! The cpu-list syntax of xl and virsh: `0-3,^2,8`, `all,^7`, `nodes:0-1,^node:1`.

use std::fmt;
use std::str::FromStr;

use super::error::TokenPos;
use super::{CpuListError, CpuMap};

/// The largest CPU or node number accepted when the host's size is not known. Xen's
/// `NR_CPUS` is at most 4095; this bound only keeps a typo from allocating gigabytes.
pub const MAX_UNBOUNDED_CPU: usize = (1 << 20) - 1;

/// What a cpu-list is resolved against: the host's CPU count (for `all` and the
/// beyond-the-host check) and its NUMA nodes (for `node:`/`nodes:`).
///
/// ```
/// use xenvcpu::cpumap::{CpuListContext, CpuMap};
/// let nodes = ["0-3".parse::<CpuMap>().unwrap(), "4-7".parse().unwrap()];
/// let ctx = CpuListContext::new().host_cpus(8).nodes(&nodes);
/// assert_eq!(ctx.parse("all,^node:0,1").unwrap().to_string(), "1,4-7");
/// assert!(ctx.parse("9").is_err()); // the host has no CPU 9: refused, not dropped
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuListContext<'a> {
    host_cpus: Option<usize>,
    nodes: Option<&'a [CpuMap]>,
}

impl<'a> CpuListContext<'a> {
    /// A context that knows nothing of the host: `all` and node lists are errors.
    pub const fn new() -> Self {
        Self { host_cpus: None, nodes: None }
    }

    /// Sets the host's CPU count (`max_cpu_id + 1`): `all` expands to `0..n` and CPUs at
    /// or past `n` are refused.
    pub const fn host_cpus(mut self, n: usize) -> Self {
        self.host_cpus = Some(n);
        self
    }

    /// Sets the NUMA topology: `nodes[i]` holds the CPUs of node `i`.
    pub const fn nodes(mut self, nodes: &'a [CpuMap]) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// Parses a cpu-list in this context; see [`parse_cpu_list`].
    pub fn parse(&self, list: &str) -> Result<CpuMap, CpuListError> {
        parse_cpu_list(list, self)
    }
}

/// Parses a cpu-list as xl and virsh accept it.
///
/// Comma-separated tokens are applied left to right onto an empty map: `N` and `N-M` add
/// CPUs, `^N` and `^N-M` remove them, `all` adds every host CPU, and `node:N`,
/// `nodes:N-M`, `nodes:all` (each also with `^`) add or remove the CPUs of NUMA nodes.
/// Whitespace around tokens is allowed. A list that is empty or only whitespace is the
/// empty map (the canonical form of the empty map is the empty string).
///
/// # Errors
/// A [`CpuListError`] naming the token (its text, 1-based index and byte offset): an
/// empty token, junk, a reversed range, a number over the limit, `^all`, `all` or a node
/// list that the context cannot resolve, an unknown node, and CPUs beyond the host
/// (which xl silently drops).
pub fn parse_cpu_list(list: &str, ctx: &CpuListContext<'_>) -> Result<CpuMap, CpuListError> {
    let mut map = CpuMap::with_capacity(ctx.host_cpus.unwrap_or(0));
    if list.trim().is_empty() {
        return Ok(map);
    }
    let mut offset = 0;
    for (i, raw) in list.split(',').enumerate() {
        let lead = raw.len() - raw.trim_start().len();
        let token = Token { text: raw.trim(), index: i + 1, offset: offset + lead };
        offset += raw.len() + 1;
        token.apply(ctx, &mut map)?;
    }
    Ok(map)
}

struct Token<'s> {
    text: &'s str,
    index: usize,
    offset: usize,
}

impl Token<'_> {
    fn pos(&self) -> TokenPos {
        TokenPos { token: self.text.to_owned(), index: self.index, offset: self.offset }
    }

    fn apply(&self, ctx: &CpuListContext<'_>, map: &mut CpuMap) -> Result<(), CpuListError> {
        if self.text.is_empty() {
            return Err(CpuListError::EmptyToken(self.pos()));
        }
        let (negate, body) = match self.text.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, self.text),
        };
        let node_body = body.strip_prefix("nodes:").or_else(|| body.strip_prefix("node:"));
        let cpus = match node_body {
            Some(nodes) => self.node_cpus(ctx, nodes, negate)?,
            None => self.plain_cpus(ctx, body, negate)?,
        };
        match cpus {
            Selection::Range(first, last) if negate => map.remove_range(first, last),
            Selection::Range(first, last) => map.insert_range(first, last),
            Selection::Map(cpus) if negate => *map = map.difference(&cpus),
            Selection::Map(cpus) => *map = map.union(&cpus),
        }
        Ok(())
    }

    fn plain_cpus(&self, ctx: &CpuListContext<'_>, body: &str, negate: bool) -> Result<Selection, CpuListError> {
        if body == "all" {
            if negate {
                return Err(CpuListError::NegatedAll(self.pos()));
            }
            let host = ctx.host_cpus.ok_or_else(|| CpuListError::AllWithoutHost(self.pos()))?;
            return Ok(match host {
                0 => Selection::Map(CpuMap::new()),
                n => Selection::Range(0, n - 1),
            });
        }
        let limit = ctx.host_cpus.map_or(MAX_UNBOUNDED_CPU, |n| n.saturating_sub(1).max(MAX_UNBOUNDED_CPU));
        let (first, last) = self.range(body, limit)?;
        if let Some(host) = ctx.host_cpus {
            if last >= host {
                let mut cpus = CpuMap::new();
                cpus.insert_range(first.max(host), last);
                return Err(CpuListError::BeyondHost { pos: self.pos(), cpus, host_cpus: host });
            }
        }
        Ok(Selection::Range(first, last))
    }

    fn node_cpus(&self, ctx: &CpuListContext<'_>, body: &str, negate: bool) -> Result<Selection, CpuListError> {
        let nodes = ctx.nodes.ok_or_else(|| CpuListError::NoTopology(self.pos()))?;
        let (first, last) = if body == "all" {
            if negate {
                return Err(CpuListError::NegatedAll(self.pos()));
            }
            (0, nodes.len().checked_sub(1).ok_or_else(|| CpuListError::NoTopology(self.pos()))?)
        } else {
            self.range(body, MAX_UNBOUNDED_CPU)?
        };
        if last >= nodes.len() {
            let node = first.max(nodes.len());
            return Err(CpuListError::UnknownNode { pos: self.pos(), node, nr_nodes: nodes.len() });
        }
        Ok(Selection::Map(nodes[first..=last].iter().fold(CpuMap::new(), |acc, n| acc.union(n))))
    }

    /// Parses `N` or `N-M` (decimal digits only), each at most `limit`.
    fn range(&self, body: &str, limit: usize) -> Result<(usize, usize), CpuListError> {
        let (a, b) = match body.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (body, None),
        };
        let first = self.number(a, limit)?;
        let last = match b {
            Some(b) => self.number(b, limit)?,
            None => first,
        };
        if last < first {
            return Err(CpuListError::ReversedRange { pos: self.pos(), start: first, end: last });
        }
        Ok((first, last))
    }

    fn number(&self, digits: &str, limit: usize) -> Result<usize, CpuListError> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CpuListError::Junk(self.pos()));
        }
        match digits.parse::<usize>() {
            Ok(n) if n <= limit => Ok(n),
            _ => Err(CpuListError::Overflow { pos: self.pos(), limit }),
        }
    }
}

enum Selection {
    Range(usize, usize),
    Map(CpuMap),
}

impl FromStr for CpuMap {
    type Err = CpuListError;

    /// Parses a cpu-list with no host context: `all` and node lists are errors, and CPU
    /// numbers above [`MAX_UNBOUNDED_CPU`] are refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_cpu_list(s, &CpuListContext::new())
    }
}

impl fmt::Display for CpuMap {
    /// Formats the canonical cpu-list: ascending, runs of two or more CPUs as `N-M`
    /// (`0-3,8,10-11`); the empty map is the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs = Runs { cpus: self.iter().peekable() };
        if let Some((a, b)) = runs.next() {
            write_run(f, a, b)?;
        }
        for (a, b) in runs {
            f.write_str(",")?;
            write_run(f, a, b)?;
        }
        Ok(())
    }
}

fn write_run(f: &mut fmt::Formatter<'_>, first: usize, last: usize) -> fmt::Result {
    if first == last {
        write!(f, "{first}")
    } else {
        write!(f, "{first}-{last}")
    }
}

/// Maximal runs of consecutive CPUs, as `(first, last)`.
struct Runs<'a> {
    cpus: std::iter::Peekable<super::set::Iter<'a>>,
}

impl Iterator for Runs<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let first = self.cpus.next()?;
        let mut last = first;
        while self.cpus.next_if_eq(&(last + 1)).is_some() {
            last += 1;
        }
        Some((first, last))
    }
}
