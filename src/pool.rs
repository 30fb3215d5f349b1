//! Cpupools: sets of host CPUs, each with its own scheduler, that domains run in
//! ([`Host::pools`], [`Domain::pool`](crate::Domain::pool)).
//!
//! A domain is in exactly one pool and its vCPUs only run on that pool's CPUs, whatever
//! their affinity says: Xen uses hard ∩ the pool's CPUs, and refuses (`EINVAL`) a hard map
//! without any of them. Every host has Pool-0 (id 0), which Xen creates at boot with every
//! CPU; `xl cpupool-create` makes others from CPUs taken out of it.

use std::fmt;

use crate::cpumap::CpuMap;
use crate::error::{Error, Op, Result};
use crate::hypervisor::RawPoolInfo;
use crate::Host;

/// A cpupool's scheduler, from Xen's `XEN_SCHEDULER_*` id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// `credit` (5).
    Credit,
    /// `credit2` (6), Xen's default since 4.12.
    Credit2,
    /// `arinc653` (7).
    Arinc653,
    /// `rtds` (8).
    Rtds,
    /// `null` (9).
    Null,
    /// An id this crate does not know.
    Other(u32),
}

impl Scheduler {
    /// The scheduler of Xen's id (`XEN_SCHEDULER_*`).
    pub const fn from_id(id: u32) -> Scheduler {
        match id {
            xen_sys::XEN_SCHEDULER_CREDIT => Scheduler::Credit,
            xen_sys::XEN_SCHEDULER_CREDIT2 => Scheduler::Credit2,
            xen_sys::XEN_SCHEDULER_ARINC653 => Scheduler::Arinc653,
            xen_sys::XEN_SCHEDULER_RTDS => Scheduler::Rtds,
            xen_sys::XEN_SCHEDULER_NULL => Scheduler::Null,
            other => Scheduler::Other(other),
        }
    }

    /// Xen's id (`XEN_SCHEDULER_*`).
    pub const fn id(self) -> u32 {
        match self {
            Scheduler::Credit => xen_sys::XEN_SCHEDULER_CREDIT,
            Scheduler::Credit2 => xen_sys::XEN_SCHEDULER_CREDIT2,
            Scheduler::Arinc653 => xen_sys::XEN_SCHEDULER_ARINC653,
            Scheduler::Rtds => xen_sys::XEN_SCHEDULER_RTDS,
            Scheduler::Null => xen_sys::XEN_SCHEDULER_NULL,
            Scheduler::Other(id) => id,
        }
    }

    /// The name xl uses (`credit`, `credit2`, `arinc653`, `rtds`, `null`); `None` for an
    /// unknown id.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Scheduler::Credit => Some("credit"),
            Scheduler::Credit2 => Some("credit2"),
            Scheduler::Arinc653 => Some("arinc653"),
            Scheduler::Rtds => Some("rtds"),
            Scheduler::Null => Some("null"),
            Scheduler::Other(_) => None,
        }
    }
}

impl fmt::Display for Scheduler {
    /// The name, or `scheduler <id>` for an unknown one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "scheduler {}", self.id()),
        }
    }
}

/// One cpupool, as Xen reports it (`xc_cpupool_getinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's id (Pool-0 is 0).
    pub id: u32,
    /// Its scheduler.
    pub scheduler: Scheduler,
    /// Its CPUs. All are online: Xen takes a CPU out of its pool when it goes offline
    /// (and a CPU brought back online joins Pool-0).
    pub cpus: CpuMap,
    /// The number of domains in it.
    pub domains: u32,
}

impl From<RawPoolInfo> for Pool {
    fn from(raw: RawPoolInfo) -> Pool {
        Pool { id: raw.id, scheduler: Scheduler::from_id(raw.sched_id), cpus: raw.cpus, domains: raw.n_dom }
    }
}

/// The xenstore path of a cpupool's name, as libxl writes it (`/local/pool/<id>/name`).
pub fn pool_name_path(pool: u32) -> String {
    format!("/local/pool/{pool}/name")
}

impl Host {
    /// Every cpupool, in id order, listed as xl does (`xc_cpupool_getinfo` from id 0, then
    /// from the last id + 1).
    ///
    /// # Errors
    /// A failed hypercall ([`Op::CpupoolInfo`]).
    pub fn pools(&self) -> Result<Vec<Pool>> {
        let hv = self.hypervisor();
        let mut out = Vec::new();
        let mut next = 0u32;
        while let Some(raw) = hv.cpupool_info(next).map_err(|e| self.error(Op::CpupoolInfo, None, None, e))? {
            let id = raw.id;
            out.push(Pool::from(raw));
            match id.checked_add(1) {
                Some(n) => next = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// The host's online CPUs: the free ones (in no cpupool: `xc_cpupool_freeinfo`) and
    /// every pool's ([`pools`](Self::pools)). Every online CPU is in exactly one of them
    /// and an offline CPU in none, whatever the topology says: unlike a core id, which an
    /// x86 host that *parks* offline CPUs (Intel with machine-check support, Xen's default
    /// there) keeps for them, this is exact on every host. Two reads, not one atomic step:
    /// a CPU moving between pools meanwhile can be missed; [`Host::info`] checks the count
    /// against `xc_physinfo`'s and reads again.
    ///
    /// # Errors
    /// A failed hypercall ([`Op::CpupoolFreeInfo`], [`Op::CpupoolInfo`]): a refusal by
    /// Xen's security policy is [`Error::Denied`]. There is no fallback to the topology's
    /// core ids, which would be wrong on exactly the hosts this exists for.
    pub fn online_cpus(&self) -> Result<CpuMap> {
        let hv = self.hypervisor();
        let free = hv.cpupool_free_cpus().map_err(|e| self.error(Op::CpupoolFreeInfo, None, None, e))?;
        let online = self.pools()?.iter().fold(free, |all, pool| all.union(&pool.cpus));
        Ok(online.intersection(&CpuMap::all(self.nr_cpus())))
    }

    /// The cpupool with id `id`.
    ///
    /// # Errors
    /// [`Error::NoSuchPool`], or a failed hypercall.
    pub fn pool(&self, id: u32) -> Result<Pool> {
        self.pool_raw(id).map(Pool::from)
    }

    /// [`pool`](Self::pool) as the backend answered (a hot path's read: nothing built).
    pub(crate) fn pool_raw(&self, id: u32) -> Result<RawPoolInfo> {
        match self.hypervisor().cpupool_info(id).map_err(|e| self.error(Op::CpupoolInfo, None, None, e))? {
            Some(raw) if raw.id == id => Ok(raw),
            _ => Err(Error::NoSuchPool { pool: id }),
        }
    }

    /// A cpupool's name, as libxl keeps it in xenstore ([`pool_name_path`]; `Pool-0` for
    /// pool 0 on a host set up by `xencommons`); `None` when it has none.
    ///
    /// # Errors
    /// [`Error::XenStoreUnavailable`], or a failed xenstore read other than a missing node.
    pub fn pool_name(&self, id: u32) -> Result<Option<String>> {
        let store = self.store()?;
        match store.read_string(crate::xenstore::TxId::NONE, &pool_name_path(id)) {
            Ok(name) => Ok(Some(name)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.store_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedulers_are_named_as_xl_names_them() {
        let names: Vec<String> = (5..=10).map(|id| Scheduler::from_id(id).to_string()).collect();
        assert_eq!(names, ["credit", "credit2", "arinc653", "rtds", "null", "scheduler 10"]);
        for id in 0..12 {
            assert_eq!(Scheduler::from_id(id).id(), id);
        }
    }
}
