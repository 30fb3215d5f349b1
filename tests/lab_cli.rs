//! The `xenvcpu` command against real Xen, in the lab's dom0: it agrees with `xl vcpu-list`,
//! every command runs, and every error path exits with the documented code.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

#[path = "support/lab.rs"]
mod lab_support;
use lab_support::{xenvcpu_vcpu_rows, xl_vcpu_rows};

fn bin() -> String {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    std::env::var("XENVCPU_BIN").expect("XENVCPU_BIN: the xenvcpu binary in dom0")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run xenvcpu")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "xenvcpu {args:?} failed: {stderr}\n{stdout}");
    stdout.into_owned()
}

/// Exits with `code` and says why on one stderr line.
fn fails(args: &[&str], code: i32, words: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "xenvcpu {args:?}: {stderr}");
    assert!(stderr.contains(words), "xenvcpu {args:?}: {stderr:?} should mention {words:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn list_agrees_with_xl_vcpu_list() {
    let guest: u32 = std::env::var("XENVCPU_LAB_GUEST_DOMID").unwrap().parse().unwrap();
    // Give dom0 and the guest distinct affinities so the comparison means something.
    ok(&["pin", "0", "1", "0-1", "1"]);
    ok(&["pin", &guest.to_string(), "0", "2-3"]);
    let nr_cpus: usize = std::env::var("XENVCPU_LAB_NR_CPUS").unwrap().parse().unwrap();
    let (ours, xl) = (xenvcpu_vcpu_rows(&bin(), None, nr_cpus), xl_vcpu_rows(&[]));
    ok(&["pin", "0", "1", "all", "all"]);
    ok(&["pin", &guest.to_string(), "0", "all"]);
    assert_eq!(ours, xl);
    assert!(ours.keys().any(|&(d, _)| d == 0) && ours.keys().any(|&(d, _)| d == guest));
    assert_eq!(ours[&(0, 1)].1, "0-1");
    assert_eq!(ours[&(guest, 0)].1, "2-3");
    // The table names domains as xl does.
    let table = ok(&["list"]);
    assert!(table.contains("Domain-0") && table.contains("labguest"), "{table}");
}

/// Runs `xen-hptool OP CPU` (`cpu-offline` / `cpu-online`); the output when it failed.
fn hptool(op: &str, cpu: usize) -> Result<(), String> {
    let out = Command::new("xen-hptool").args([op, &cpu.to_string()]).output().expect("run xen-hptool");
    if out.status.success() {
        return Ok(());
    }
    Err(format!("xen-hptool {op} {cpu}: {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)))
}

/// Brings a host CPU back online when dropped, also when the test fails.
struct CpuBack(usize);

impl Drop for CpuBack {
    fn drop(&mut self) {
        match hptool("cpu-online", self.0) {
            Err(e) if !std::thread::panicking() => panic!("{e}"),
            Err(e) => eprintln!("{e}"),
            Ok(()) => {}
        }
    }
}

/// With the last host CPU offline (`xen-hptool cpu-offline`): `info` counts 3 of 4 online
/// and marks the CPU's row `-` (no core, no socket: Xen resets them) and `offline`, with
/// the node Xen still reports; its JSON says the same. `list` shows maps as they were
/// set: a map of every CPU id is still `all` (and `0-3` in JSON), a pin to 2-3 is `2-3`
/// although Xen uses only CPU 2 (the `pin` warned about the dropped CPU).
#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn info_and_list_show_an_offline_cpu() {
    let nr: usize = std::env::var("XENVCPU_LAB_NR_CPUS").unwrap().parse().unwrap();
    let last = nr - 1;
    let _ = bin();
    hptool("cpu-offline", last).unwrap();
    let back = CpuBack(last);

    let text = ok(&["info"]);
    assert!(text.contains(&format!("CPUs online       : {} of {nr} (max CPU id {last})", nr - 1)), "{text}");
    assert!(text.contains(&format!("online CPU list   : 0-{}", last - 1)), "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("cpu "))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), nr, "{text}");
    assert_eq!(rows[last], [last.to_string().as_str(), "-", "-", "0", "offline"], "{text}");
    assert!(rows[..last].iter().all(|r| r[4] == "online" && r[1] != "-"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["info", "--json"])).unwrap();
    assert_eq!(json["nr_cpus_online"].as_u64(), Some(nr as u64 - 1));
    assert_eq!(json["nr_cpu_ids"].as_u64(), Some(nr as u64));
    assert_eq!(
        json["cpus"][last],
        serde_json::json!({"cpu": last, "online": false, "core": null, "socket": null, "node": 0})
    );

    let every = format!("0-{last}");
    let pair = format!("{}-{last}", last - 1);
    ok(&["pin", "0", "0", &every, &every]);
    let pinned = run(&["pin", "0", "1", &pair]);
    let stderr = String::from_utf8_lossy(&pinned.stderr);
    let stdout = String::from_utf8_lossy(&pinned.stdout);
    let table = ok(&["list", "0"]);
    let json: serde_json::Value = serde_json::from_str(&ok(&["list", "0", "--json"])).unwrap();
    ok(&["pin", "0", "1", "all", "all"]);
    drop(back);
    assert!(pinned.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("hard {} / soft (unchanged)", last - 1)), "effective map: {stdout}");
    assert!(stderr.contains(&format!("dropped CPUs {last} from the hard affinity of vCPU 1")), "{stderr}");
    let affinity = |vcpu: &str| {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().take(3).eq(["Domain-0", "0", vcpu]))
            .unwrap_or_else(|| panic!("vCPU {vcpu} in {table}"));
        line.rsplitn(4, ' ').take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(affinity("0"), "all / all", "{table}");
    assert_eq!(affinity("1"), format!("{pair} / all"), "{table}");
    assert_eq!((json[0]["hard"].as_str(), json[0]["soft"].as_str()), (Some(every.as_str()), Some(every.as_str())));
    assert_eq!((json[1]["hard"].as_str(), json[1]["soft"].as_str()), (Some(pair.as_str()), Some(every.as_str())));
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn every_command_runs() {
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", "--json"])).unwrap();
    let nr_cpus: u64 = std::env::var("XENVCPU_LAB_NR_CPUS").unwrap().parse().unwrap();
    assert_eq!(info["nr_cpus_online"].as_u64(), Some(nr_cpus));
    assert_eq!(info["cpus"].as_array().unwrap().len() as u64, info["max_cpu_id"].as_u64().unwrap() + 1);
    assert!(ok(&["info"]).contains("cpu_topology"));
    assert!(ok(&["list", "labguest"]).contains("labguest"));
    let pinned = ok(&["pin", "labguest", "all", "0-1", "1"]);
    assert_eq!(pinned.lines().count(), 4, "{pinned}");
    ok(&["pin", "labguest", "all", "all", "all"]);
    let maps: serde_json::Value = serde_json::from_str(&ok(&["maps", "labguest", "--json"])).unwrap();
    assert_eq!(maps["possible"], "0-3");
    assert!(ok(&["set", "labguest", "3", "--wait", "90"]).contains("followed"));
    assert!(ok(&["state", "labguest", "2", "off", "--wait", "90"]).contains("followed"));
    let maps: serde_json::Value = serde_json::from_str(&ok(&["maps", "labguest", "--json"])).unwrap();
    assert_eq!((maps["online"].as_str(), maps["requested"].as_str()), (Some("0-1"), Some("0-1")));
    let bench: serde_json::Value =
        serde_json::from_str(&ok(&["bench", "pin", "0", "--iterations", "200", "--json"])).unwrap();
    assert!(bench["updates_per_sec"].as_f64().unwrap() > 0.0);
    assert!(bench["p99_ns"].as_u64().unwrap() >= bench["p50_ns"].as_u64().unwrap());
}

#[test]
#[ignore = "lab: needs a real Xen hypervisor (run tests/lab/lab.sh test)"]
fn error_paths_exit_with_their_codes() {
    fails(&["list", "no-such-domain"], 2, "no domain named");
    fails(&["list", "31000"], 2, "no domain with id 31000");
    fails(&["pin", "0", "0", "1-"], 2, "cpu-list");
    fails(&["pin", "0", "0", "0,64"], 2, "beyond the host");
    fails(&["pin", "0", "9", "0"], 2, "has no vCPU 9");
    fails(&["pin", "0", "0", "0,^0"], 2, "empty");
    fails(&["set", "labguest", "0"], 2, "1 to 4");
    fails(&["set", "labguest", "5"], 2, "1 to 4");
    fails(&["state", "labguest", "0", "off"], 2, "cannot be taken offline");
    // Not root: the typed permission error, exit 3.
    let out = Command::new(bin()).arg("list").uid(65534).gid(65534).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
}
