//! The CPU policy suite on the simulator, whose featuresets are the lab's (QEMU's
//! `qemu64` under Xen 4.17); "xl create" with `cpuid=` is played by applying the tokens
//! to the PV default featureset, which Xen clamps to the PV maximum.

mod cpu_checks;

use std::sync::Arc;

use cpu_checks::{Fixture, Toolstack};
use xenvcpu::cpu::{CpuFeatures, FeatureBit};
use xenvcpu::hypervisor::SimDomain;
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{paths, TxId, XenStore};
use xenvcpu::{DomId, FeaturesetKind};

struct SimXl {
    sim: Arc<SimPlatform>,
}

impl Toolstack for SimXl {
    fn create_with_cpuid(&self, name: &str, cpuid: &str) -> DomId {
        let domid = 7;
        self.sim.hv.add_domain(SimDomain { domid, max_vcpus: 4, online: 2, hvm: false });
        self.sim.store.write(TxId::NONE, &paths::name(domid), name.as_bytes()).unwrap();
        // libxl: start from the type's default, apply each name=0|1.
        let mut set = CpuFeatures::from_words(self.sim.host.featureset(FeaturesetKind::PvDefault).unwrap());
        for token in cpuid.split(',').skip_while(|t| *t == "host") {
            let (feature, value) = token.split_once('=').unwrap();
            let bit: FeatureBit = feature.parse().unwrap();
            if value == "1" {
                set.insert(bit);
            } else {
                set.remove(bit);
            }
        }
        let words = set.to_words(self.sim.host.featureset_len().unwrap());
        self.sim.hv.set_domain_featureset(domid, &words).unwrap();
        DomId(domid)
    }

    fn destroy(&self, _name: &str) {
        self.sim.hv.remove_domain(7);
    }

    fn guest_flags(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
}

fn sim_fixture() -> Fixture {
    let sim = Arc::new(SimPlatform::lab_like().unwrap());
    Fixture { host: sim.host.clone(), guest: "labguest".into(), xl: Box::new(SimXl { sim }) }
}

cpu_suite!(sim_fixture);
