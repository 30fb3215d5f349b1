//! Typed ids, so that a domain id, a vCPU number and a physical CPU cannot be swapped
//! without the compiler noticing: [`DomId`], [`VcpuId`], [`PhysCpu`], and [`VcpuSet`], a set
//! of vCPUs that is not a [`CpuMap`] of physical CPUs (the same bitmap engine underneath).
//!
//! ```
//! use xenvcpu::{DomId, VcpuId, VcpuSet};
//!
//! let guest = DomId(1);
//! let vcpus: VcpuSet = "0-2,5".parse()?;
//! assert!(vcpus.contains(VcpuId(5)));
//! assert_eq!(vcpus.to_string(), "0-2,5");
//! assert_eq!(format!("{guest}"), "1");
//! # Ok::<(), xenvcpu::cpumap::CpuListError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::cpumap::{CpuListError, CpuMap};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The number itself.
            pub const fn get(self) -> u32 {
                self.0
            }

            /// As an index (into a map or a list).
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl From<$name> for u32 {
            fn from(id: $name) -> u32 {
                id.0
            }
        }
    };
}

id_type!(
    /// A domain id (Xen's `domid_t`); dom0 is [`DomId::DOM0`].
    DomId
);
id_type!(
    /// A vCPU number within one domain, `0..max_vcpus`.
    VcpuId
);
id_type!(
    /// A physical CPU of the host, as Xen numbers it (`0..=max_cpu_id`). Sets of them are
    /// [`CpuMap`]s.
    PhysCpu
);

impl DomId {
    /// The control domain.
    pub const DOM0: DomId = DomId(0);
}

/// A set of vCPUs of one domain (not of physical CPUs: those are [`CpuMap`]s). Written and
/// parsed in the cpu-list syntax (`0-2,5`).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VcpuSet(CpuMap);

impl VcpuSet {
    /// No vCPU.
    pub fn new() -> VcpuSet {
        VcpuSet(CpuMap::new())
    }

    /// vCPUs `0..count`.
    pub fn all(count: u32) -> VcpuSet {
        VcpuSet(CpuMap::all(count as usize))
    }

    /// The vCPUs whose numbers are the CPUs of `map` (for byte maps in libvirt's layout,
    /// which carry vCPU sets too).
    pub fn from_map(map: CpuMap) -> VcpuSet {
        VcpuSet(map)
    }

    /// The bitmap underneath: vCPU `n` is bit `n`.
    pub fn as_map(&self) -> &CpuMap {
        &self.0
    }

    /// Whether `vcpu` is in the set.
    pub fn contains(&self, vcpu: VcpuId) -> bool {
        self.0.contains(vcpu.index())
    }

    /// Adds `vcpu`; `true` if it was not there.
    pub fn insert(&mut self, vcpu: VcpuId) -> bool {
        self.0.insert(vcpu.index())
    }

    /// Removes `vcpu`; `true` if it was there.
    pub fn remove(&mut self, vcpu: VcpuId) -> bool {
        self.0.remove(vcpu.index())
    }

    /// How many vCPUs.
    pub fn count(&self) -> usize {
        self.0.count()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lowest vCPU.
    pub fn first(&self) -> Option<VcpuId> {
        self.0.first().map(|v| VcpuId(v as u32))
    }

    /// The highest vCPU.
    pub fn last(&self) -> Option<VcpuId> {
        self.0.last().map(|v| VcpuId(v as u32))
    }

    /// The vCPUs in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = VcpuId> + Clone + '_ {
        self.0.iter().map(|v| VcpuId(v as u32))
    }

    /// self ∪ other.
    pub fn union(&self, other: &VcpuSet) -> VcpuSet {
        VcpuSet(self.0.union(&other.0))
    }

    /// self ∩ other.
    pub fn intersection(&self, other: &VcpuSet) -> VcpuSet {
        VcpuSet(self.0.intersection(&other.0))
    }

    /// self ∖ other.
    pub fn difference(&self, other: &VcpuSet) -> VcpuSet {
        VcpuSet(self.0.difference(&other.0))
    }

    /// Whether every vCPU of self is in `other`.
    pub fn is_subset(&self, other: &VcpuSet) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl fmt::Debug for VcpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VcpuSet({})", self.0)
    }
}

impl fmt::Display for VcpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for VcpuSet {
    type Err = CpuListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(VcpuSet)
    }
}

impl FromIterator<VcpuId> for VcpuSet {
    fn from_iter<I: IntoIterator<Item = VcpuId>>(iter: I) -> Self {
        VcpuSet(iter.into_iter().map(VcpuId::index).collect())
    }
}

impl Extend<VcpuId> for VcpuSet {
    fn extend<I: IntoIterator<Item = VcpuId>>(&mut self, iter: I) {
        self.0.extend(iter.into_iter().map(VcpuId::index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vcpu_set_is_a_cpu_list_of_vcpus() {
        let set: VcpuSet = "0-2,5".parse().unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), [VcpuId(0), VcpuId(1), VcpuId(2), VcpuId(5)]);
        assert_eq!((set.first(), set.last(), set.count()), (Some(VcpuId(0)), Some(VcpuId(5)), 4));
        assert_eq!(set.difference(&VcpuSet::all(3)).to_string(), "5");
        assert_eq!(VcpuSet::all(2).union(&[VcpuId(7)].into_iter().collect()).to_string(), "0-1,7");
        assert!(VcpuSet::all(2).is_subset(&set));
        assert_eq!(format!("{set:?}"), "VcpuSet(0-2,5)");
    }

    #[test]
    fn ids_print_and_parse_as_numbers() {
        assert_eq!(DomId(7).to_string(), "7");
        assert_eq!("3".parse::<VcpuId>().unwrap(), VcpuId(3));
        assert!("x".parse::<PhysCpu>().is_err());
        assert_eq!(u32::from(DomId::DOM0), 0);
    }
}
