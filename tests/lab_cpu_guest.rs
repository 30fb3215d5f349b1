//! The CPU policy suite on real Xen, in the lab's dom0: the guest with `cpuid=` is created
//! and booted by `xl`, and its kernel's CPU flags are read from its console log.

mod cpu_checks;
#[path = "support/lab.rs"]
mod lab_support;

use std::time::{Duration, Instant};

use cpu_checks::{Fixture, Toolstack};
use lab_support::{guest_config, must};
use xenvcpu::{DomId, Host};

fn xl(args: &[&str]) -> String {
    must("xl", args)
}

struct Xl;

fn console(name: &str) -> String {
    format!("/var/log/xen/console/guest-{name}.log")
}

impl Toolstack for Xl {
    fn create_with_cpuid(&self, name: &str, cpuid: &str) -> DomId {
        let path = format!("/tmp/{name}.cfg");
        std::fs::write(&path, guest_config(name, &format!("cpuid = \"{cpuid}\"\n"))).unwrap();
        let _ = std::fs::remove_file(console(name));
        xl(&["create", &path]);
        DomId(xl(&["domid", name]).trim().parse().unwrap())
    }

    fn destroy(&self, name: &str) {
        xl(&["destroy", name]);
    }

    fn guest_flags(&self, name: &str) -> Option<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let log = std::fs::read_to_string(console(name)).unwrap_or_default();
            if let Some(line) = log.lines().find_map(|l| l.trim_end_matches('\r').split("LABGUEST flags=").nth(1)) {
                return Some(line.split_whitespace().map(str::to_owned).collect());
            }
            assert!(Instant::now() < deadline, "{name} printed no flags: {log}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn lab_fixture() -> Fixture {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let guest = std::env::var("XENVCPU_LAB_GUEST").expect("XENVCPU_LAB_GUEST");
    Fixture { host: Host::open().unwrap(), guest, xl: Box::new(Xl) }
}

cpu_suite!(lab_fixture, ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)");
