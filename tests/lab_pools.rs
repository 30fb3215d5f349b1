//! Cpupools on the lab's real Xen: the online CPUs as the free CPUs and every pool's (a
//! free CPU online, then offline); a second pool made from one of Pool-0's CPUs, with a
//! throwaway PV guest (from `/lab/labguest.cfg`, created paused) migrated into it. Pinning
//! it outside its pool is refused naming the pool; inside works; `xenvcpu pools` matches
//! `xl cpupool-list -c`; `xenvcpu list` prints the maps as `xl vcpu-list` does. Everything
//! is undone in a guard, also when the test fails: the guest destroyed, the pool destroyed,
//! its CPU given back to Pool-0.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use xenvcpu::cpumap::CpuMap;
use xenvcpu::{AffinityRequest, Error, Host, Scheduler, VcpuId, VcpuSet};

#[path = "support/lab.rs"]
mod lab_support;
use lab_support::{guest_config, must, sh, text};

const GUEST: &str = "poolguest";
const POOL: &str = "pool1";
const POOL_CFG: &str = "/tmp/pool1.cfg";
const GUEST_CFG: &str = "/tmp/poolguest.cfg";

fn lab() {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
}

fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

fn xenvcpu(args: &[&str]) -> Output {
    sh(&std::env::var("XENVCPU_BIN").expect("XENVCPU_BIN"), args)
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "lab_pools: {line}");
}

/// The last CPU, taken from Pool-0 into `pool1` (credit2), and the throwaway guest moved
/// there. Dropping it undoes all of it, each step quietly (any may not have happened).
struct PoolLab {
    cpu: usize,
}

impl PoolLab {
    fn setup() -> PoolLab {
        lab();
        let cpu = std::env::var("XENVCPU_LAB_NR_CPUS").expect("XENVCPU_LAB_NR_CPUS").parse::<usize>().unwrap() - 1;
        let guard = PoolLab { cpu };
        std::fs::write(GUEST_CFG, guest_config(GUEST, "")).unwrap();
        must("xl", &["create", "-p", GUEST_CFG]);
        must("xl", &["cpupool-cpu-remove", "Pool-0", &cpu.to_string()]);
        std::fs::write(POOL_CFG, format!("name = \"{POOL}\"\nsched = \"credit2\"\ncpus = [\"{cpu}\"]\n")).unwrap();
        must("xl", &["cpupool-create", POOL_CFG]);
        must("xl", &["cpupool-migrate", GUEST, POOL]);
        guard
    }
}

impl Drop for PoolLab {
    fn drop(&mut self) {
        quiet("xl", &["destroy", GUEST]);
        quiet("xl", &["cpupool-destroy", POOL]);
        quiet("xl", &["cpupool-cpu-add", "Pool-0", &self.cpu.to_string()]);
        let _ = std::fs::remove_file(GUEST_CFG);
        let _ = std::fs::remove_file(POOL_CFG);
    }
}

/// `xl cpupool-list -c` as name → CPUs.
fn xl_pools() -> BTreeMap<String, CpuMap> {
    let out = must("xl", &["cpupool-list", "-c"]);
    note(&format!("xl cpupool-list -c:\n{out}"));
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_string();
            let cpus = words.next().map_or(CpuMap::new(), |c| c.parse().unwrap_or_else(|e| panic!("{c:?}: {e}")));
            Some((name, cpus))
        })
        .collect()
}

/// The hard and soft columns of a vCPU row of `xl vcpu-list` or `xenvcpu list`.
fn maps_of(row: &str) -> (String, String) {
    let words: Vec<&str> = row.split_whitespace().collect();
    let n = words.len();
    assert!(n >= 3 && words[n - 2] == "/", "{row}");
    (words[n - 3].to_string(), words[n - 1].to_string())
}

#[test]
#[ignore = "lab: needs a real Xen (run tests/lab/lab.sh test)"]
fn a_domain_in_a_second_pool_is_pinned_only_inside_it() {
    let guard = PoolLab::setup();
    let cpu = guard.cpu;
    let host = Host::open().unwrap();
    let all = CpuMap::all(host.nr_cpus());
    let pool0_cpus = all.difference(&CpuMap::from_iter([cpu]));

    // The library's pools, against xl's.
    let pools = host.pools().unwrap();
    assert_eq!(pools.len(), 2, "{pools:?}");
    let (p0, p1) = (&pools[0], &pools[1]);
    assert_eq!((p0.id, &p0.cpus), (0, &pool0_cpus));
    assert_eq!((&p1.cpus, p1.scheduler, p1.domains), (&CpuMap::from_iter([cpu]), Scheduler::Credit2, 1));
    assert_eq!(host.pool_name(p1.id).unwrap().as_deref(), Some(POOL));
    assert_eq!(host.pool_name(0).unwrap().as_deref(), Some("Pool-0"));
    let out = xenvcpu(&["pools", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ours: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ours: BTreeMap<String, CpuMap> = ours
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["cpus"].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(ours, xl_pools(), "xenvcpu pools = xl cpupool-list -c");
    let table = xenvcpu(&["pools"]);
    note(&format!("xenvcpu pools:\n{}", text(&table.stdout)));

    let domid = must("xl", &["domid", GUEST]).trim().parse::<u32>().unwrap();
    let dom = host.domain(xenvcpu::DomId(domid)).unwrap();
    assert_eq!(dom.pool().unwrap().id, p1.id);

    // What `all` means for a domain in a pool: xl prints the maps as set, and ours match.
    let xl = must("xl", &["vcpu-list", GUEST]);
    let list = xenvcpu(&["list", GUEST]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    note(&format!("xl vcpu-list:\n{xl}xenvcpu list:\n{}", text(&list.stdout)));
    let xl_maps: Vec<_> = xl.lines().skip(1).map(maps_of).collect();
    let our_maps: Vec<_> = text(&list.stdout).lines().skip(1).map(maps_of).collect();
    assert_eq!(our_maps, xl_maps, "the same maps as xl vcpu-list");
    assert!(text(&list.stdout).lines().skip(1).all(|l| l.contains(POOL)), "the Pool column names {POOL}");
    let json: Vec<Value> = serde_json::from_slice(&xenvcpu(&["list", "--json", GUEST]).stdout).unwrap();
    assert!(json.iter().all(|r| r["pool"] == POOL && r["poolid"] == p1.id), "{json:?}");

    // Outside the pool: refused before any change, naming the pool and its CPUs.
    let before = dom.vcpus().unwrap();
    let outside = CpuMap::from_iter([0, 1]);
    let err = dom.pin(&dom.all_vcpus(), &AffinityRequest::hard(&outside)).unwrap_err();
    match &err {
        Error::NoUsableCpu { pool, pool_name, online, .. } => {
            assert_eq!((*pool, pool_name.as_deref(), online), (p1.id, Some(POOL), &CpuMap::from_iter([cpu])));
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains(&format!("({POOL}), whose CPUs are {cpu}")), "{err}");
    assert_eq!(dom.vcpus().unwrap(), before, "nothing changed");
    // One vCPU through the hot path: Xen's EINVAL, reported the same way.
    let err = dom.set_affinity(VcpuId(0), &AffinityRequest::hard(&outside)).unwrap_err();
    assert!(matches!(&err, Error::NoUsableCpu { pool, .. } if *pool == p1.id), "{err}");
    let cli = xenvcpu(&["pin", GUEST, "all", "0-1"]);
    assert_eq!(cli.status.code(), Some(1), "{}", text(&cli.stderr));
    assert!(text(&cli.stderr).contains(POOL), "{}", text(&cli.stderr));

    // Inside it (and one CPU outside, dropped as outside the pool, not offline).
    let want = CpuMap::from_iter([cpu - 1, cpu]);
    let req = AffinityRequest::hard(&want);
    let done = dom.pin(&VcpuSet::all(dom.max_vcpus()), &req).unwrap();
    let online = host.info().unwrap().online_cpus();
    assert_eq!(online, all, "a CPU of another pool is online");
    for (v, eff) in &done {
        assert_eq!(eff.hard, Some(CpuMap::from_iter([cpu])), "vCPU {v}: hard ∩ the pool");
        let (hard, _) = eff.dropped_why(&req, &CpuMap::from_iter([cpu]), &online);
        assert_eq!((hard.outside_pool, hard.offline), (CpuMap::from_iter([cpu - 1]), CpuMap::new()));
        assert_eq!(dom.vcpu_info(*v).unwrap().hard, want, "Xen keeps the map as set");
    }
    let cli = xenvcpu(&["pin", GUEST, "0", &format!("{}-{cpu}", cpu - 1)]);
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    assert!(text(&cli.stderr).contains("outside the domain's cpupool"), "{}", text(&cli.stderr));

    // Undone: one pool again, with every CPU.
    drop(guard);
    let pools = host.pools().unwrap();
    assert_eq!(pools.iter().map(|p| (p.id, p.cpus.clone())).collect::<Vec<_>>(), [(0, all)], "restored");
}

/// The last CPU taken out of Pool-0 (free), then offline, then back; undone when dropped,
/// also when the test fails (quietly: a step may not have happened, and a CPU coming back
/// online rejoins Pool-0 by itself).
struct FreeCpuLab {
    cpu: usize,
}

impl Drop for FreeCpuLab {
    fn drop(&mut self) {
        quiet("xen-hptool", &["cpu-online", &self.cpu.to_string()]);
        quiet("xl", &["cpupool-cpu-add", "Pool-0", &self.cpu.to_string()]);
    }
}

/// Which CPUs are online comes from the pools: a free CPU (in no pool) is online, the
/// same CPU offline is not, and back online it is in Pool-0 again; `xenvcpu info --json`
/// says the same.
#[test]
#[ignore = "lab: needs a real Xen (run tests/lab/lab.sh test)"]
fn a_free_cpu_is_online_and_offline_it_is_not() {
    lab();
    let nr = std::env::var("XENVCPU_LAB_NR_CPUS").expect("XENVCPU_LAB_NR_CPUS").parse::<usize>().unwrap();
    let cpu = nr - 1;
    let host = Host::open().unwrap();
    let all = CpuMap::all(nr);
    let without = all.difference(&CpuMap::from_iter([cpu]));
    assert_eq!(host.info().unwrap().online_cpus(), all, "every CPU online to begin with");
    let guard = FreeCpuLab { cpu };
    let info_json = |cpu: usize| -> Value {
        let out = xenvcpu(&["info", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["cpus"][cpu].clone()
    };

    must("xl", &["cpupool-cpu-remove", "Pool-0", &cpu.to_string()]);
    assert_eq!(host.hypervisor().cpupool_free_cpus().unwrap(), CpuMap::from_iter([cpu]), "CPU {cpu} is free");
    let info = host.info().unwrap();
    assert_eq!((info.online_cpus(), info.phys.nr_cpus as usize), (all.clone(), nr), "a free CPU is online");
    assert_eq!(info_json(cpu)["online"], true);

    must("xen-hptool", &["cpu-offline", &cpu.to_string()]);
    let info = host.info().unwrap();
    note(&format!("CPU {cpu} free, then offline: topology {:?}, online {}", info.cpus, info.online));
    assert_eq!((info.online_cpus(), info.phys.nr_cpus as usize), (without.clone(), nr - 1), "offline");
    assert_eq!(info.node_cpus().iter().fold(CpuMap::new(), |a, n| a.union(n)), without);
    assert_eq!(host.hypervisor().cpupool_free_cpus().unwrap(), CpuMap::new(), "an offline CPU is not free");
    assert_eq!(info_json(cpu)["online"], false);

    must("xen-hptool", &["cpu-online", &cpu.to_string()]);
    assert_eq!(host.info().unwrap().online_cpus(), all, "back online");
    let pools = host.pools().unwrap();
    assert_eq!(pools.iter().map(|p| (p.id, p.cpus.clone())).collect::<Vec<_>>(), [(0, all.clone())], "in Pool-0 again");
    drop(guard);
    assert_eq!(host.info().unwrap().online_cpus(), all, "restored");
}
