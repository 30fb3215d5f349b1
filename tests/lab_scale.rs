//! The bigger lab (`tests/lab/lab.sh --scale test`): many domains and a 64-vCPU guest on the
//! 4-CPU host, against `xl`. The guests are made by `tests/lab/dom0-init.sh` from
//! `XENVCPU_LAB_SCALE_GUESTS` (`NAME:DOMID:MAXVCPUS:VCPUS:run|paused` each): `scale64`
//! (64 vCPUs, 8 online, running), `scale16`, `scale1` and `fleet2`..`fleet8` (4 vCPUs), paused.
//! These tests run only there: the default lab leaves this binary out, and here they fail
//! (not skip) without the scale guests.
//!
//! Every test puts each vCPU it changed back on every CPU, also when it fails.

use std::io::Write;
use std::process::Output;

use xenvcpu::cpumap::CpuMap;
use xenvcpu::{AffinityRequest, Domain, Host, VcpuId, VcpuSet, VcpuState};

#[path = "support/lab.rs"]
mod lab_support;
use lab_support::{must, sh, text, xenvcpu_vcpu_rows, xl_vcpu_rows};

/// One scale guest as dom0-init.sh made it.
#[derive(Debug, Clone)]
struct Guest {
    name: String,
    domid: u32,
    max: u32,
    online: u32,
    running: bool,
}

/// The scale guests; panics outside the bigger lab.
fn guests() -> Vec<Guest> {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh --scale test");
    assert_eq!(
        std::env::var("XENVCPU_LAB_SCALE").as_deref(),
        Ok("1"),
        "these tests need the bigger lab's guests: tests/lab/lab.sh --scale test"
    );
    let list = std::env::var("XENVCPU_LAB_SCALE_GUESTS").expect("XENVCPU_LAB_SCALE_GUESTS");
    let guests: Vec<Guest> = list
        .split_whitespace()
        .map(|g| {
            let f: Vec<&str> = g.split(':').collect();
            assert_eq!(f.len(), 5, "{g:?} in XENVCPU_LAB_SCALE_GUESTS={list:?}");
            Guest {
                name: f[0].to_string(),
                domid: f[1].parse().unwrap(),
                max: f[2].parse().unwrap(),
                online: f[3].parse().unwrap(),
                running: f[4] == "run",
            }
        })
        .collect();
    assert!(guests.len() >= 10, "{list}");
    guests
}

fn guest(name: &str) -> Guest {
    guests().into_iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no scale guest {name}"))
}

fn bin() -> String {
    std::env::var("XENVCPU_BIN").expect("XENVCPU_BIN")
}

fn xenvcpu(args: &[&str]) -> Output {
    sh(&bin(), args)
}

fn ok(args: &[&str]) -> String {
    let out = xenvcpu(args);
    assert!(out.status.success(), "xenvcpu {args:?}: {}\n{}", text(&out.stderr), text(&out.stdout));
    text(&out.stdout)
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "lab_scale: {line}");
}

/// Puts every vCPU of the domains back on every CPU (hard and soft) when dropped.
struct Unpin(Vec<Domain>);

impl Drop for Unpin {
    fn drop(&mut self) {
        for dom in &self.0 {
            let all = CpuMap::all(dom.host().nr_cpus());
            if let Err(e) = dom.pin(&dom.all_vcpus(), &AffinityRequest::both(&all, &all).forced()) {
                if !std::thread::panicking() {
                    panic!("restoring domain {}: {e}", dom.id());
                }
                eprintln!("restoring domain {}: {e}", dom.id());
            }
        }
    }
}

/// `map` in xl's notation: `all` for every CPU id of the host.
fn xl_notation(map: &CpuMap, nr_cpus: usize) -> String {
    if *map == CpuMap::all(nr_cpus) {
        "all".into()
    } else {
        map.to_string()
    }
}

#[test]
#[ignore = "lab: needs the bigger lab (run tests/lab/lab.sh --scale test)"]
fn the_scale_guests_have_their_vcpus() {
    let host = Host::open().unwrap();
    let guests = guests();
    for g in &guests {
        let dom = host.domain_by_name(&g.name).unwrap_or_else(|e| panic!("{}: {e}", g.name));
        assert_eq!(dom.id().get(), g.domid, "{}", g.name);
        assert_eq!(dom.max_vcpus(), g.max, "{}", g.name);
        assert_eq!(dom.info().flags.paused, !g.running, "{}: {:?}", g.name, dom.info().flags);
        let vcpus = dom.vcpus().unwrap();
        assert_eq!(vcpus.len(), g.max as usize, "{}", g.name);
        let online: VcpuSet = vcpus.iter().filter(|v| v.state != VcpuState::Offline).map(|v| v.vcpu).collect();
        // A running PV guest brought up what its xenstore keys made available; a paused one
        // that never ran has only vCPU 0 (Xen initialises the boot vCPU at creation).
        let want: VcpuSet =
            if g.running { (0..g.online).map(VcpuId).collect() } else { [VcpuId(0)].into_iter().collect() };
        assert_eq!(online, want, "{}: {vcpus:?}", g.name);
        // The availability keys say what the config asked for, running or not.
        let requested = dom.requested_vcpus().unwrap().unwrap_or_else(|| panic!("{}: no availability keys", g.name));
        assert_eq!(requested, (0..g.online).map(VcpuId).collect(), "{}", g.name);
    }
    let big = guests.iter().find(|g| g.max == 64).expect("a 64-vCPU guest");
    assert!(big.running && big.online >= 8, "{big:?}");
    note(&format!("{} scale guests, {} vCPUs", guests.len(), guests.iter().map(|g| g.max).sum::<u32>()));
}

/// Every vCPU of the 64-vCPU guest gets its own hard and soft maps through `pin_each`;
/// `xenvcpu list` and the library's `vcpus` then show exactly what `xl vcpu-list` shows.
#[test]
#[ignore = "lab: needs the bigger lab (run tests/lab/lab.sh --scale test)"]
fn list_of_the_64_vcpu_guest_matches_xl_vcpu_list() {
    let g = guest("scale64");
    let host = Host::open().unwrap();
    let nr = host.nr_cpus();
    let dom = host.domain_by_name(&g.name).unwrap();
    let _back = Unpin(vec![dom.clone()]);
    // vCPU v: hard {v mod nr, (v + 1) mod nr} for odd v, {v mod nr} for even v; soft all
    // but CPU v mod nr.
    let maps: Vec<(CpuMap, CpuMap)> = (0..g.max as usize)
        .map(|v| {
            let mut hard = CpuMap::from_iter([v % nr]);
            if v % 2 == 1 {
                hard.insert((v + 1) % nr);
            }
            let soft = CpuMap::all(nr).difference(&CpuMap::from_iter([v % nr]));
            (hard, soft)
        })
        .collect();
    let items: Vec<(VcpuId, AffinityRequest<'_>)> =
        maps.iter().enumerate().map(|(v, (h, s))| (VcpuId(v as u32), AffinityRequest::both(h, s))).collect();
    let effective = dom.pin_each(&items).unwrap();
    assert_eq!(effective.len(), 64);

    let xl = xl_vcpu_rows(&[&g.name]);
    let ours = xenvcpu_vcpu_rows(&bin(), Some(&g.name), nr);
    let lib = dom.vcpus().unwrap();
    assert_eq!(xl.len(), 64, "{xl:?}");
    assert_eq!(ours, xl, "xenvcpu list --json = xl vcpu-list for {}", g.name);
    for (v, info) in lib.iter().enumerate() {
        let (hard, soft) = &maps[v];
        assert_eq!((&info.hard, &info.soft), (hard, soft), "vCPU {v}");
        let row = &xl[&(g.domid, v as u32)];
        assert_eq!((row.1.as_str(), row.2.as_str()), (xl_notation(hard, nr).as_str(), xl_notation(soft, nr).as_str()));
        assert_eq!(info.state != VcpuState::Offline, row.0, "vCPU {v}");
    }
    // The table: one row per vCPU, the guest's name on each.
    let table = ok(&["list", &g.name]);
    assert_eq!(table.lines().filter(|l| l.split_whitespace().next() == Some(g.name.as_str())).count(), 64, "{table}");
}

/// `xenvcpu pin scale64 all 0-1` changes all 64 vCPUs in one command, as
/// `xl vcpu-pin scale64 all 0-1` would; `xl vcpu-list` sees every one of them.
#[test]
#[ignore = "lab: needs the bigger lab (run tests/lab/lab.sh --scale test)"]
fn pin_all_64_vcpus_from_the_cli() {
    let g = guest("scale64");
    let host = Host::open().unwrap();
    let dom = host.domain_by_name(&g.name).unwrap();
    let _back = Unpin(vec![dom.clone()]);
    let out = ok(&["pin", &g.name, "all", "0-1", "2-3"]);
    assert_eq!(out.lines().filter(|l| l.contains("hard 0-1")).count(), 64, "{out}");
    let xl = xl_vcpu_rows(&[&g.name]);
    assert_eq!(xl.len(), 64);
    for ((_, v), (_, hard, soft)) in &xl {
        assert_eq!((hard.as_str(), soft.as_str()), ("0-1", "2-3"), "vCPU {v}");
    }
    // And the other tool's change is what we read.
    must("xl", &["vcpu-pin", &g.name, "all", "3", "all"]);
    for v in dom.vcpus().unwrap() {
        assert_eq!((v.hard.to_string(), v.soft.to_string()), ("3".to_string(), "0-3".to_string()), "{v:?}");
    }
}

/// `xenvcpu list` of every domain (dom0, labguest and the scale guests: over a hundred
/// vCPUs) shows exactly `xl vcpu-list`'s rows, with the fleet pinned apart.
#[test]
#[ignore = "lab: needs the bigger lab (run tests/lab/lab.sh --scale test)"]
fn list_of_every_domain_matches_xl() {
    let guests = guests();
    let host = Host::open().unwrap();
    let nr = host.nr_cpus();
    let doms: Vec<Domain> = guests.iter().map(|g| host.domain_by_name(&g.name).unwrap()).collect();
    let _back = Unpin(doms.clone());
    for (i, dom) in doms.iter().enumerate() {
        let hard = CpuMap::from_iter([i % nr]);
        dom.pin(&dom.all_vcpus(), &AffinityRequest::hard(&hard)).unwrap();
    }
    let xl = xl_vcpu_rows(&[]);
    let ours = xenvcpu_vcpu_rows(&bin(), None, nr);
    assert_eq!(ours, xl, "xenvcpu list --json = xl vcpu-list");
    let vcpus: u32 = guests.iter().map(|g| g.max).sum();
    assert!(xl.len() as u32 >= vcpus + 4, "{} rows for {vcpus} scale vCPUs", xl.len());
    for (i, g) in guests.iter().enumerate() {
        let hard = (i % nr).to_string();
        assert!(xl.iter().filter(|((d, _), _)| *d == g.domid).all(|(_, (_, h, _))| *h == hard), "{}", g.name);
    }
}

/// The agent places eight 4-vCPU domains from a policy directory in one `--once` pass, and a
/// second pass finds them right and writes nothing.
#[test]
#[ignore = "lab: needs the bigger lab (run tests/lab/lab.sh --scale test)"]
fn the_agent_places_the_fleet_and_a_second_pass_writes_nothing() {
    let guests = guests();
    let host = Host::open().unwrap();
    let mut fleet: Vec<(String, u32)> = vec![("labguest".into(), 4)];
    fleet.extend(guests.iter().filter(|g| g.name.starts_with("fleet")).map(|g| (g.name.clone(), g.max)));
    assert_eq!(fleet.len(), 8, "{fleet:?}");
    let doms: Vec<Domain> = fleet.iter().map(|(n, _)| host.domain_by_name(n).unwrap()).collect();
    let _back = Unpin(doms.clone());
    let dir = std::env::temp_dir().join("scale-policies");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (name, max)) in fleet.iter().enumerate() {
        let cpus = if i % 2 == 0 { "0-1" } else { "2-3" };
        let xml = format!(
            "<domain type='xen'><name>{name}</name><vcpu placement='static' cpuset='{cpus}'>{max}</vcpu>\
             <cputune><vcpupin vcpu='0' cpuset='{}'/></cputune></domain>\n",
            i % 4
        );
        std::fs::write(dir.join(format!("{name}.xml")), xml).unwrap();
    }
    let state = std::env::temp_dir().join("scale-agent-state");
    let _ = std::fs::remove_dir_all(&state);
    let args = ["agent", "--policy", dir.to_str().unwrap(), "--once", "--json", "--state-dir", state.to_str().unwrap()];
    let first = xenvcpu(&args);
    assert!(first.status.success(), "{}\n{}", text(&first.stderr), text(&first.stdout));
    let second = xenvcpu(&args);
    assert!(second.status.success(), "{}\n{}", text(&second.stderr), text(&second.stdout));
    let summary = |out: &Output| -> serde_json::Value {
        let stdout = text(&out.stdout);
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary line: {stdout}"))
    };
    let (s1, s2) = (summary(&first), summary(&second));
    note(&format!("agent over the fleet: first {s1}, second {s2}"));
    assert_eq!(s1["domains"].as_u64(), Some(8), "{s1}");
    assert_eq!(s1["writes"].as_u64(), Some(32), "every vCPU of the 8 domains pinned once: {s1}");
    assert_eq!(s2["writes"].as_u64(), Some(0), "{s2}");
    let xl = xl_vcpu_rows(&fleet.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>());
    for (i, dom) in doms.iter().enumerate() {
        let cpus = if i % 2 == 0 { "0-1" } else { "2-3" };
        for v in 0..4 {
            let want = if v == 0 { (i % 4).to_string() } else { cpus.to_string() };
            assert_eq!(xl[&(dom.id().get(), v)].1, want, "{} vCPU {v}", fleet[i].0);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&state);
}
