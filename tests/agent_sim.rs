//! The agent suite on the simulated platform, where "another tool" makes the same
//! xenstore and hypercall writes `xl` makes; plus `reconcile` on its own.

mod agent_checks;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_checks::{Counting, Fixture, Toolstack};
use xenvcpu::agent::{reconcile, reconcile_with, EmulatorOutcome, Options, Repair};
use xenvcpu::cpumap::CpuMap;
use xenvcpu::hypervisor::SimDomain;
use xenvcpu::placement::Placement;
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{paths, TxId, XenStore};
use xenvcpu::{AffinityRequest, DomId, Error, Host, NoEmulatorReason, VcpuId, VcpuSet};

/// `xl`'s writes, made on the simulator.
struct SimXl {
    sim: Arc<SimPlatform>,
    next_domid: AtomicU32,
}

impl Toolstack for SimXl {
    fn vcpu_set(&self, name: &str, count: u32) {
        let dom = self.sim.host.domain_by_name(name).unwrap();
        // As libxl: every availability node in one transaction.
        let tx = self.sim.store.transaction_start().unwrap();
        for v in 0..dom.max_vcpus() {
            let value: &[u8] = if v < count { b"online" } else { b"offline" };
            self.sim.store.write(tx, &paths::availability(dom.id().get(), v), value).unwrap();
        }
        self.sim.store.transaction_end(tx, true).unwrap();
    }

    fn vcpu_pin(&self, name: &str, vcpu: u32, cpus: &str) {
        let dom = self.sim.host.domain_by_name(name).unwrap();
        dom.set_affinity(VcpuId(vcpu), &AffinityRequest::hard(&cpus.parse().unwrap())).unwrap();
    }

    fn create(&self, name: &str) -> DomId {
        let domid = self.next_domid.fetch_add(1, Ordering::SeqCst);
        self.sim.hv.add_domain(SimDomain { domid, max_vcpus: 4, online: 2, hvm: false });
        self.sim.store.write(TxId::NONE, &paths::name(domid), name.as_bytes()).unwrap();
        for v in 0..4 {
            let value: &[u8] = if v < 2 { b"online" } else { b"offline" };
            self.sim.store.write(TxId::NONE, &paths::availability(domid, v), value).unwrap();
        }
        self.sim.store.fire_special("@introduceDomain");
        DomId(domid)
    }

    /// xl's view, from the hypercalls xl makes: state `--p` when offline, else `r--`
    /// (running and blocked are not modelled), and the hard affinity as xl prints it.
    fn vcpu_list(&self, name: &str) -> Vec<(String, String)> {
        let dom = self.sim.host.domain_by_name(name).unwrap();
        dom.vcpus()
            .unwrap()
            .iter()
            .map(|v| {
                let state = if v.state == xenvcpu::VcpuState::Offline { "--p" } else { "r--" };
                (state.to_owned(), v.hard.to_string())
            })
            .collect()
    }

    /// As `xl destroy` on Xen 4.17: the domain's xenstore nodes go first, then the domain
    /// dies and xenstored fires `@releaseDomain` while Xen still lists it (dying); it is
    /// freed later.
    fn destroy(&self, name: &str) {
        let domid = self.sim.host.domain_id(name).unwrap();
        self.sim.store.rm(TxId::NONE, &format!("/local/domain/{domid}")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        self.sim.hv.set_dying(domid.get());
        self.sim.store.fire_special("@releaseDomain");
        let hv = self.sim.hv.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            hv.remove_domain(domid.get());
        });
    }
}

fn sim_fixture() -> Fixture {
    let sim = Arc::new(SimPlatform::lab_like().unwrap());
    let counter = Counting::new(sim.hv.clone());
    let host = Host::with_shared_backend(counter.clone()).unwrap().with_store(sim.store.connect()).unwrap();
    Fixture {
        host,
        counter,
        guest: "labguest".into(),
        xl: Box::new(SimXl { sim, next_domid: AtomicU32::new(10) }),
        follow: Duration::from_secs(10),
    }
}

agent_suite!(sim_fixture);

const POLICY: &str = "<domain><vcpu cpuset='0-1'>4</vcpu><cputune><vcpupin vcpu='3' cpuset='3'/></cputune></domain>";

fn hard_maps(sim: &SimPlatform, domid: u32) -> Vec<String> {
    sim.host.domain(DomId(domid)).unwrap().vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect()
}

#[test]
fn a_reconcile_pins_every_vcpu_offline_ones_too_and_a_second_finds_all_right() {
    let sim = SimPlatform::lab_like().unwrap();
    let policy = Placement::from_xml(POLICY).unwrap().resolve(&sim.host.info().unwrap(), None).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    assert_eq!(dom.online_vcpus().unwrap(), "0-1".parse().unwrap(), "vCPUs 2-3 are offline");

    let dry = reconcile(&dom, &policy, true).unwrap();
    assert_eq!((dry.changed.len(), dry.writes()), (4, 0));
    assert_eq!(hard_maps(&sim, 1), ["0-3"; 4], "a dry run writes nothing");

    let calls = sim.hv.calls();
    let report = reconcile(&dom, &policy, false).unwrap();
    assert!(report.ok() && report.right.is_empty(), "{report}");
    let changed: Vec<VcpuId> = report.changed.iter().map(|c| c.vcpu).collect();
    assert_eq!(changed, [VcpuId(0), VcpuId(1), VcpuId(2), VcpuId(3)]);
    assert_eq!(report.writes(), 4);
    assert_eq!(hard_maps(&sim, 1), ["0-1", "0-1", "0-1", "3"]);
    assert!(sim.hv.calls() > calls);

    let again = reconcile(&dom, &policy, false).unwrap();
    assert_eq!((&again.right, again.changed.len(), again.writes()), (&VcpuSet::all(4), 0, 0), "already right");

    let eight = Placement::from_xml("<domain><vcpu>8</vcpu></domain>").unwrap();
    let err = reconcile(&dom, &eight.resolve(&sim.host.info().unwrap(), None).unwrap(), false).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("for 8 vCPUs") && m.contains("has 4")), "{err}");
}

/// A repair Xen refuses (a temporary pin override: `EBUSY`) is reported for its vCPU, and
/// the vCPUs after it are still repaired, each after its own identity check.
#[test]
fn a_refused_repair_fails_its_vcpu_alone_and_the_rest_go_on() {
    let sim = SimPlatform::lab_like().unwrap();
    let policy = Placement::from_xml(POLICY).unwrap().resolve(&sim.host.info().unwrap(), None).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    sim.hv.set_pin_override(1, 1, true);
    let calls = sim.hv.calls();
    let report = reconcile(&dom, &policy, false).unwrap();
    let first = sim.hv.calls() - calls;
    let changed: Vec<VcpuId> = report.changed.iter().map(|c| c.vcpu).collect();
    assert_eq!(changed, [VcpuId(0), VcpuId(2), VcpuId(3)], "{report}");
    assert!(matches!(report.failed.as_slice(), [(VcpuId(1), Error::Busy { vcpu: VcpuId(1), .. })]), "{report}");
    assert!(!report.ok());
    let maps = hard_maps(&sim, 1);
    assert_eq!([&maps[0], &maps[2], &maps[3]], ["0-1", "0-1", "3"]);
    assert_ne!(maps[1], "0-1", "vCPU 1 not repaired");
    // Per vCPU repaired an identity check and a write: a reconcile that repairs vCPU 1
    // alone makes 3 × 2 calls fewer.
    sim.hv.set_pin_override(1, 1, false);
    let calls = sim.hv.calls();
    let report = reconcile(&dom, &policy, false).unwrap();
    assert_eq!(report.changed.iter().map(|c| c.vcpu).collect::<Vec<_>>(), [VcpuId(1)], "{report}");
    assert_eq!(first - (sim.hv.calls() - calls), 3 * 2);

    // Once the domain is gone, every repair fails with that, none is written.
    dom.pin(&VcpuSet::from_iter([VcpuId(0), VcpuId(2)]), &AffinityRequest::hard(&CpuMap::from_iter([3]))).unwrap();
    sim.hv.set_dying(1);
    let report = reconcile(&dom, &policy, false).unwrap();
    assert!(report.changed.is_empty(), "{report}");
    let failed: Vec<VcpuId> = report.failed.iter().map(|(v, _)| *v).collect();
    assert_eq!(failed, [VcpuId(0), VcpuId(2)], "{report}");
    assert!(report.failed.iter().all(|(_, e)| matches!(e, Error::DomainGone { .. })), "{report}");
}

#[test]
fn repair_only_writes_the_named_vcpus_and_reports_the_rest_as_drift() {
    let sim = SimPlatform::lab_like().unwrap();
    let policy = Placement::from_xml(POLICY).unwrap().resolve(&sim.host.info().unwrap(), None).unwrap();
    let dom = sim.host.domain(DomId(1)).unwrap();
    let only = Options { repair: Repair::Only(VcpuSet::from_iter([VcpuId(3)])), emulator: true, ..Options::default() };
    let report = reconcile_with(&dom, &policy, &only).unwrap();
    assert_eq!(report.changed.iter().map(|c| c.vcpu).collect::<Vec<_>>(), [VcpuId(3)]);
    assert_eq!(report.drift.len(), 3, "{report}");
    assert!(matches!(report.emulator, EmulatorOutcome::None(NoEmulatorReason::Pv)), "{report}");
    assert_eq!(hard_maps(&sim, 1), ["0-3", "0-3", "0-3", "3"]);

    let nothing = Options { repair: Repair::Nothing, ..Options::default() };
    let report = reconcile_with(&dom, &policy, &nothing).unwrap();
    assert_eq!((report.changed.len(), report.drift.len(), report.writes()), (0, 3, 0));

    // vCPUs moved by another tool are drift for a Nothing reconcile, whatever they were.
    dom.set_affinity(VcpuId(3), &AffinityRequest::hard(&CpuMap::from_iter([1]))).unwrap();
    let report = reconcile_with(&dom, &policy, &nothing).unwrap();
    assert!(report.drift.iter().any(|c| c.vcpu == VcpuId(3) && c.from.to_string() == "1"), "{report}");
}

/// `placement='auto'` without numad: the domain's node affinity is the advisory nodeset;
/// an affinity of every node places on every CPU, with a warning.
#[test]
fn placement_auto_follows_the_domains_node_affinity() {
    use xenvcpu::agent::{Agent, Event, Policy};
    use xenvcpu::hypervisor::SimConfig;
    use xenvcpu::sim::SimGuest;
    let config = SimConfig { nr_cpus: 8, nr_nodes: 2, cores_per_socket: 8, ..SimConfig::default() };
    let guest =
        SimGuest { domain: SimDomain { domid: 1, max_vcpus: 4, online: 2, hvm: false }, name: "numaguest".into() };
    let sim = SimPlatform::new(config, &[guest]).unwrap();
    let auto = "<domain><name>numaguest</name><vcpu placement='auto'>4</vcpu>\
                <cputune><vcpupin vcpu='0' cpuset='0'/></cputune></domain>";
    let run = || {
        let mut agent = Agent::new(sim.host.clone(), None);
        agent.add_policy(Policy::from_xml("auto.xml", auto).unwrap());
        let mut events = Vec::new();
        agent.reconcile_all(&mut |e: Event| events.push(e.to_string())).unwrap();
        events
    };
    let events = run();
    assert!(events.iter().any(|e| e.contains("node affinity is all nodes")), "{events:#?}");
    assert_eq!(hard_maps(&sim, 1), ["0", "0-7", "0-7", "0-7"]);

    sim.hv.set_node_affinity(1, &CpuMap::from_iter([1])).unwrap();
    let events = run();
    assert!(!events.iter().any(|e| e.contains("all nodes")), "{events:#?}");
    assert_eq!(hard_maps(&sim, 1), ["0", "4-7", "4-7", "4-7"], "node 1's CPUs; <vcpupin> still wins");
}
