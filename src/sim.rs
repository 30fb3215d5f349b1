//! [`SimPlatform`]: a simulated Xen host with its xenstore and PV guests that react to
//! `cpu/<n>/availability` as a Linux PV guest does — for fast tests of the availability
//! logic and for trying the command without Xen. Never used unless asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::Result;
use crate::hypervisor::{SimConfig, SimDomain, SimHost};
use crate::xenstore::{paths, SimStore, TxId, XenStore};
use crate::Host;

/// A simulated host, its store, and one agent thread per PV guest playing the guest kernel.
#[derive(Debug)]
pub struct SimPlatform {
    /// The host, over [`SimPlatform::hv`].
    pub host: Host,
    /// The simulated hypervisor (for fault injection).
    pub hv: Arc<SimHost>,
    /// The store (another connection to it: [`SimStore::connect`]).
    pub store: SimStore,
    stop: Arc<AtomicBool>,
    agents: Vec<JoinHandle<()>>,
}

/// A guest to create on a [`SimPlatform`].
#[derive(Debug, Clone)]
pub struct SimGuest {
    /// The domain.
    pub domain: SimDomain,
    /// Its name in xenstore.
    pub name: String,
}

impl SimPlatform {
    /// The lab's shape: 4 CPUs; dom0 (`Domain-0`, 4 vCPUs, no availability nodes as in the
    /// real lab); domain 1 `labguest`, PV, `maxvcpus = 4`, `vcpus = 2`; domain 2
    /// `hvmguest`, HVM, 2 vCPUs.
    pub fn lab_like() -> Result<SimPlatform> {
        let names = ["Domain-0", "labguest", "hvmguest"];
        let guests: Vec<SimGuest> = SimHost::LAB_DOMAINS
            .into_iter()
            .zip(names)
            .map(|(domain, name)| SimGuest { domain, name: name.into() })
            .collect();
        SimPlatform::new(SimConfig::default(), &guests)
    }

    /// A host of the given shape with these domains. Every domain but dom0 gets libxl's
    /// availability nodes (`online` for `0..online`); PV guests get an agent.
    pub fn new(config: SimConfig, guests: &[SimGuest]) -> Result<SimPlatform> {
        let hv = Arc::new(SimHost::new(config));
        let store = SimStore::new();
        // What xen-init-dom0 writes at boot: Pool-0's name.
        store.write(TxId::NONE, &crate::pool_name_path(0), b"Pool-0")?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut agents = Vec::new();
        for g in guests {
            let d = &g.domain;
            hv.add_domain(d.clone());
            store.write(TxId::NONE, &paths::name(d.domid), g.name.as_bytes())?;
            if d.domid == 0 {
                continue;
            }
            for v in 0..d.max_vcpus {
                let value: &[u8] = if v < d.online { b"online" } else { b"offline" };
                store.write(TxId::NONE, &paths::availability(d.domid, v), value)?;
            }
            if !d.hvm {
                agents.push(spawn_agent(hv.clone(), store.connect(), d.domid, d.max_vcpus, stop.clone())?);
            }
        }
        let host = Host::with_shared_backend(hv.clone())?.with_store(store.connect())?;
        Ok(SimPlatform { host, hv, store, stop, agents })
    }
}

impl SimPlatform {
    /// Creates a cpupool named `name` with scheduler `scheduler` and the CPUs `cpus`, as
    /// `xl cpupool-create name="..." sched="..." cpus="..."` does: the pool is created, its
    /// name written to xenstore ([`crate::pool_name_path`]), and each CPU taken from Pool-0
    /// (it must be there: `xl cpupool-cpu-remove Pool-0 N` first is not needed here) and
    /// given to the new pool. Returns the pool's id.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] naming the step Xen's model refused, with its
    /// errno; a failed xenstore write.
    pub fn create_pool(&self, name: &str, scheduler: crate::Scheduler, cpus: &crate::cpumap::CpuMap) -> Result<u32> {
        let refused = |what: String, e: crate::hypervisor::Errno| crate::Error::InvalidArgument(format!("{what}: {e}"));
        let id = self.hv.create_pool(scheduler.id()).map_err(|e| refused(format!("creating pool {name}"), e))?;
        self.store.write(TxId::NONE, &crate::pool_name_path(id), name.as_bytes())?;
        for cpu in cpus.iter() {
            let cpu = cpu as u32;
            self.hv.pool_remove_cpu(0, cpu).map_err(|e| refused(format!("removing CPU {cpu} from Pool-0"), e))?;
            self.hv.pool_add_cpu(id, cpu).map_err(|e| refused(format!("adding CPU {cpu} to {name}"), e))?;
        }
        Ok(id)
    }

    /// Undoes [`create_pool`](Self::create_pool) as `xl cpupool-destroy` does: the pool's
    /// CPUs go back to Pool-0, then the pool and its name are removed.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] with the model's errno (e.g. `EBUSY` while a
    /// domain is in the pool); a failed xenstore removal.
    pub fn destroy_pool(&self, id: u32) -> Result<()> {
        let refused = |what: String, e: crate::hypervisor::Errno| crate::Error::InvalidArgument(format!("{what}: {e}"));
        let pool = self.host.pool(id)?;
        if pool.domains > 0 {
            return Err(refused(format!("destroying pool {id}"), crate::hypervisor::Errno::new(libc::EBUSY)));
        }
        for cpu in pool.cpus.iter() {
            let cpu = cpu as u32;
            self.hv.pool_remove_cpu(id, cpu).map_err(|e| refused(format!("removing CPU {cpu} from pool {id}"), e))?;
            self.hv.pool_add_cpu(0, cpu).map_err(|e| refused(format!("giving CPU {cpu} back to Pool-0"), e))?;
        }
        self.hv.destroy_pool(id).map_err(|e| refused(format!("destroying pool {id}"), e))?;
        self.store.rm(TxId::NONE, &format!("/local/pool/{id}"))?;
        Ok(())
    }

    /// Creates a PVH guest named `name` (`domain.hvm` is taken as set): an HVM container
    /// without a device model, with libxl's availability nodes (`online` for
    /// `0..online`) and an agent that follows them, as for a PV guest (libxl writes the
    /// same keys for PV and PVH guests).
    ///
    /// # Errors
    /// A failed write to the simulated store.
    pub fn add_pvh_guest(&mut self, domain: SimDomain, name: &str) -> Result<()> {
        let d = SimDomain { hvm: true, ..domain };
        self.hv.add_domain(d.clone());
        self.hv.set_pvh(d.domid, true);
        self.store.write(TxId::NONE, &paths::name(d.domid), name.as_bytes())?;
        for v in 0..d.max_vcpus {
            let value: &[u8] = if v < d.online { b"online" } else { b"offline" };
            self.store.write(TxId::NONE, &paths::availability(d.domid, v), value)?;
        }
        let agent = spawn_agent(self.hv.clone(), self.store.connect(), d.domid, d.max_vcpus, self.stop.clone())?;
        self.agents.push(agent);
        Ok(())
    }
}

impl Drop for SimPlatform {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for agent in self.agents.drain(..) {
            let _ = agent.join();
        }
    }
}

/// The guest kernel's side: watch `cpu`, and bring each vCPU up or down as its
/// availability says (vCPU 0 stays up, as Linux does not offline the boot CPU).
fn spawn_agent(
    hv: Arc<SimHost>,
    store: SimStore,
    domid: u32,
    max_vcpus: u32,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>> {
    let dir = paths::cpu_dir(domid);
    store.watch(&dir, "guest-kernel")?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match store.next_event(Duration::from_millis(20)) {
                Ok(Some(_)) => {
                    for v in 1..max_vcpus {
                        let path = paths::availability(domid, v);
                        if let Ok(value) = store.read(TxId::NONE, &path) {
                            hv.set_vcpu_online(domid, v, value == b"online");
                        }
                    }
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }))
}
