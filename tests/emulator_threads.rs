//! The emulator pin moves every thread of the device model, not only its main thread:
//! proven on a real multi-threaded process started the way libxl starts QEMU
//! (`-xen-domid <domid>` on its command line).
//!
//! The test binary is its own stand-in device model: run with `-xen-domid N` it starts
//! four threads and sleeps. So this file has its own `main` (`harness = false` in
//! Cargo.toml) and prints libtest's closing line itself.

use std::process::{Child, Command};
use std::time::Duration;

use xenvcpu::agent::{reconcile_with, EmulatorOutcome, Options, Repair};
use xenvcpu::cpumap::CpuMap;
use xenvcpu::placement::Placement;
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{TxId, XenStore};
use xenvcpu::DomId;

const THREADS: usize = 4;

/// The stand-in device model: `THREADS` threads besides the main one, all asleep.
fn device_model() {
    let threads: Vec<_> =
        (0..THREADS).map(|_| std::thread::spawn(|| std::thread::sleep(Duration::from_secs(60)))).collect();
    std::thread::sleep(Duration::from_secs(60));
    drop(threads);
}

struct Stand(Child);

impl Drop for Stand {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn thread_affinities(pid: u32) -> Vec<(u32, CpuMap)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid: u32 = entry.unwrap().file_name().to_str().unwrap().parse().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
        let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
        out.push((tid, list.trim().parse().unwrap()));
    }
    out
}

/// Starts the stand-in device model of domain `domid`, with all its threads.
fn stand_in(domid: u32) -> Stand {
    let stand =
        Stand(Command::new(std::env::current_exe().unwrap()).args(["-xen-domid", &domid.to_string()]).spawn().unwrap());
    let pid = stand.0.id();
    for _ in 0..500 {
        if thread_affinities(pid).len() == THREADS + 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(thread_affinities(pid).len(), THREADS + 1, "the stand-in has its threads");
    stand
}

fn every_thread_of_the_device_model_is_pinned() {
    let stand = stand_in(2);
    let pid = stand.0.id();
    let sim = SimPlatform::lab_like().unwrap();
    sim.store.write(TxId::NONE, "/local/domain/2/image/device-model-pid", pid.to_string().as_bytes()).unwrap();
    let hvm = sim.host.domain(DomId(2)).unwrap();
    let online = xenvcpu::process::online_cpus().unwrap();
    let last = CpuMap::from_iter([online.last().unwrap()]);
    for target in [last, online.clone()] {
        let (got_pid, affinity) = hvm.pin_emulator(&target).unwrap();
        assert_eq!((got_pid, &affinity), (pid, &target));
        for (tid, map) in thread_affinities(pid) {
            assert_eq!(map, target, "thread {tid} of {pid}");
        }
    }
    // The same pid as another domain's device model is refused, and nothing moves.
    let dom1 = sim.host.domain(DomId(1)).unwrap();
    sim.store.write(TxId::NONE, "/local/domain/1/image/device-model-pid", pid.to_string().as_bytes()).unwrap();
    assert!(matches!(
        dom1.pin_emulator(&CpuMap::from_iter([0])),
        Err(xenvcpu::Error::NotDeviceModel { domid: DomId(1), .. })
    ));
    assert!(thread_affinities(pid).iter().all(|(_, m)| *m == online));
}

/// `apply --commit` and the agent pin every thread of the emulator to `<emulatorpin>`; a
/// periodic check reports an emulator moved away as drift, and repairs it when enforcing;
/// a PV domain reports "no emulator" rather than failing.
fn apply_and_the_agent_pin_the_emulator() {
    let stand = stand_in(2);
    let pid = stand.0.id();
    let sim = SimPlatform::lab_like().unwrap();
    sim.store.write(TxId::NONE, "/local/domain/2/image/device-model-pid", pid.to_string().as_bytes()).unwrap();
    let online = xenvcpu::process::online_cpus().unwrap();
    let last = online.last().unwrap();
    let file = std::env::temp_dir().join(format!("xenvcpu-emulatorpin-{}.xml", std::process::id()));
    let xml = format!(
        "<domain><name>hvmguest</name><vcpu>2</vcpu><cputune><emulatorpin cpuset='{last}'/></cputune></domain>"
    );
    std::fs::write(&file, xml).unwrap();
    let code = xenvcpu::cli::run(["xenvcpu", "apply", "hvmguest", file.to_str().unwrap(), "--commit"], Some(&sim));
    assert_eq!(code, 0);
    let want = CpuMap::from_iter([last]);
    assert!(thread_affinities(pid).iter().all(|(_, m)| *m == want), "apply --commit pinned every thread");

    let dom = sim.host.domain(DomId(2)).unwrap();
    let policy = Placement::from_xml(&std::fs::read_to_string(&file).unwrap())
        .unwrap()
        .resolve(&sim.host.info().unwrap(), None)
        .unwrap();
    let check = |repair| reconcile_with(&dom, &policy, &Options { repair, emulator: true, dry_run: false }).unwrap();
    assert!(matches!(check(Repair::All).emulator, EmulatorOutcome::Right { pid: p } if p == pid));
    xenvcpu::process::pin_threads(pid, &online).unwrap(); // someone moves it
    let report = check(Repair::Nothing);
    assert!(matches!(report.emulator, EmulatorOutcome::Drift { .. }), "{report}");
    assert!(thread_affinities(pid).iter().all(|(_, m)| *m == online), "a drift report moves nothing");
    let report = check(Repair::All);
    assert!(matches!(report.emulator, EmulatorOutcome::Pinned { .. }) && report.writes() == 1, "{report}");
    assert!(thread_affinities(pid).iter().all(|(_, m)| *m == want), "enforced");

    // The PV guest has none: reported, not a failure.
    let pv = sim.host.domain(DomId(1)).unwrap();
    let pv_policy = Placement::from_xml("<vcpu>4</vcpu>").unwrap().resolve(&sim.host.info().unwrap(), None).unwrap();
    let report = reconcile_with(&pv, &pv_policy, &Options { emulator: true, ..Options::default() }).unwrap();
    assert!(report.ok() && matches!(report.emulator, EmulatorOutcome::None(_)), "{report}");
    let _ = std::fs::remove_file(&file);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-xen-domid") {
        device_model();
        return;
    }
    let tests: [(&str, fn()); 2] = [
        ("every_thread_of_the_device_model_is_pinned", every_thread_of_the_device_model_is_pinned),
        ("apply_and_the_agent_pin_the_emulator", apply_and_the_agent_pin_the_emulator),
    ];
    // libtest's flags as the lab uses them: these are host tests, none is `#[ignore]`d, so
    // `--ignored` runs (and `--list --ignored` lists) none of them.
    let ignored_only = args.iter().any(|a| a == "--ignored");
    if args.iter().any(|a| a == "--list") {
        if !ignored_only {
            tests.iter().for_each(|(name, _)| println!("{name}: test"));
        }
        return;
    }
    let tests = if ignored_only { &tests[..0] } else { &tests[..] };
    let mut failed = 0;
    for &(name, test) in tests {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    let passed = tests.len() - failed;
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    std::process::exit(i32::from(failed > 0));
}
