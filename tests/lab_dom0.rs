//! SetVcpus on Domain-0 itself, in the lab: `xenvcpu set Domain-0 2 --wait 60` takes dom0's
//! vCPUs 2 and 3 offline through xenstore (as `xl vcpu-set 0 2` does), and `set Domain-0 4
//! --wait 60` brings them back; Xen (`xl vcpu-list 0`) and xenvcpu's maps must agree at
//! each step. The lab's dom0 starts without `cpu/*/availability` nodes: the test checks
//! that and leaves dom0 as it found it (4 vCPUs online, no nodes), also when it fails.
//!
//! When a vCPU becomes available again, dom0's kernel only marks the CPU present; onlining
//! it is userspace's job (a udev rule on a normal system, which the lab's busybox dom0 has
//! not). While dom0 is asked for more vCPUs, this test plays that rule, as the lab guest's
//! `/init` does for the guest.

use std::io::Write;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xenvcpu::xenstore::TxId;
use xenvcpu::{DomId, Host};

const DOM0_CPU_DIR: &str = "/local/domain/0/cpu";

fn lab() -> String {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    std::env::var("XENVCPU_BIN").expect("XENVCPU_BIN: the xenvcpu binary in dom0")
}

fn say(text: &str) {
    // Past libtest's capture, so that the figures are in the lab's output of this binary.
    let _ = writeln!(std::io::stderr(), "lab_dom0: {text}");
}

fn xenvcpu(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("run xenvcpu")
}

fn ok(bin: &str, args: &[&str]) -> String {
    let out = xenvcpu(bin, args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "xenvcpu {args:?} failed ({:?}): {stderr}\n{stdout}", out.status);
    stdout.into_owned()
}

/// dom0's online vCPUs per `xl vcpu-list 0` (a vCPU whose CPU column is `-` is offline).
fn xl_online() -> Vec<u32> {
    let out = Command::new("xl").args(["vcpu-list", "0"]).output().expect("xl vcpu-list 0");
    assert!(out.status.success(), "xl vcpu-list 0: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 9, "xl vcpu-list line {line:?}");
            (f[3] != "-").then(|| f[2].parse().unwrap())
        })
        .collect()
}

/// dom0's (online, requested) maps per `xenvcpu maps Domain-0 --json`.
fn our_maps(bin: &str) -> (String, Option<String>) {
    let json: serde_json::Value = serde_json::from_str(&ok(bin, &["maps", "Domain-0", "--json"])).unwrap();
    (json["online"].as_str().unwrap().to_owned(), json["requested"].as_str().map(str::to_owned))
}

/// dom0's own view: /sys/devices/system/cpu/online.
fn kernel_online() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap().trim().to_owned()
}

/// Plays the udev rule of a normal dom0: every 100 ms, onlines each CPU the kernel has
/// but keeps offline. Stops (and is joined) on drop.
struct Udev {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Udev {
    fn start() -> Udev {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/sys/devices/system/cpu").unwrap().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let is_cpu = name
                        .strip_prefix("cpu")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                    let online = entry.path().join("online");
                    if is_cpu && std::fs::read_to_string(&online).is_ok_and(|s| s.trim() == "0") {
                        let _ = std::fs::write(&online, "1");
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Udev { stop, thread: Some(thread) }
    }
}

impl Drop for Udev {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Puts dom0 back as the lab booted it, also when the test fails: every vCPU online
/// (through xenvcpu, playing udev, waiting up to 60 s for Xen to agree), and no
/// availability nodes if there were none.
struct Restore {
    bin: String,
    vcpus: u32,
    had_nodes: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _udev = Udev::start();
        let count = self.vcpus.to_string();
        let out = xenvcpu(&self.bin, &["set", "Domain-0", &count, "--wait", "60"]);
        let want: Vec<u32> = (0..self.vcpus).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while xl_online() != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        if !self.had_nodes {
            let host = Host::open().expect("open Xen");
            let removed = host.store().and_then(|s| s.rm(TxId::NONE, DOM0_CPU_DIR).map_err(|e| host.store_error(e)));
            if let Err(e) = removed {
                say(&format!("restore: cannot remove {DOM0_CPU_DIR}: {e}"));
            }
        }
        let now = xl_online();
        say(&format!("restored: set {count} exit {:?}; xl vcpu-list 0 online {now:?}", out.status.code()));
        if now != want && !std::thread::panicking() {
            panic!("dom0 not restored to {want:?} online: {now:?} ({})", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn set_vcpus_on_domain_0_goes_to_2_and_back_to_4() {
    let bin = lab();
    let vcpus: u32 = std::env::var("XENVCPU_LAB_DOM0_VCPUS").unwrap().parse().unwrap();
    assert_eq!(vcpus, 4, "the lab boots dom0 with 4 vCPUs");
    let all: Vec<u32> = (0..vcpus).collect();
    assert_eq!(xl_online(), all, "dom0 starts with every vCPU online");

    let host = Host::open().expect("open Xen");
    let store = host.store().expect("xenstore");
    let had_nodes = store.exists(TxId::NONE, DOM0_CPU_DIR).expect("xenstore exists");
    say(&format!("dom0 at start: {DOM0_CPU_DIR} exists: {had_nodes}; online {}", kernel_online()));
    assert_eq!(host.domain(DomId::DOM0).unwrap().requested_vcpus().unwrap().is_some(), had_nodes);
    let _restore = Restore { bin: bin.clone(), vcpus, had_nodes };

    // Down to 2: dom0's kernel offlines vCPUs 2 and 3 by itself.
    let start = Instant::now();
    let out = ok(&bin, &["set", "Domain-0", "2", "--wait", "60"]);
    say(&format!("set Domain-0 2 --wait 60: {:.1} s: {}", start.elapsed().as_secs_f64(), out.trim()));
    assert_eq!(xl_online(), [0, 1], "xl vcpu-list 0 after set 2");
    assert_eq!(our_maps(&bin), ("0-1".to_owned(), Some("0-1".to_owned())));
    assert_eq!(kernel_online(), "0-1", "dom0's own view");
    for v in 0..vcpus {
        let value = store.read_string(TxId::NONE, &format!("{DOM0_CPU_DIR}/{v}/availability")).unwrap();
        assert_eq!(value, if v < 2 { "online" } else { "offline" }, "vCPU {v}");
    }

    // Back to 4: the kernel marks 2 and 3 present; "udev" onlines them.
    let udev = Udev::start();
    let start = Instant::now();
    let out = ok(&bin, &["set", "Domain-0", "4", "--wait", "60"]);
    say(&format!("set Domain-0 4 --wait 60: {:.1} s: {}", start.elapsed().as_secs_f64(), out.trim()));
    drop(udev);
    assert_eq!(xl_online(), all, "xl vcpu-list 0 after set 4");
    assert_eq!(our_maps(&bin), ("0-3".to_owned(), Some("0-3".to_owned())));
    assert_eq!(kernel_online(), "0-3", "dom0's own view");
}
