//! The agent suite on real Xen, in the lab's dom0, where "another tool" is `xl` itself; and
//! the `xenvcpu agent` command: JSON lines, `--once` exit status, SIGTERM.

mod agent_checks;
#[path = "support/lab.rs"]
mod lab_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_checks::{guest_policy, policy_dir, scratch, Counting, Fixture, Toolstack, PLACED};
use lab_support::{guest_config, must};
use xenvcpu::hypervisor::XenCtrlBackend;
use xenvcpu::{DomId, Host};

fn xl(args: &[&str]) -> String {
    must("xl", args)
}

/// `xl`, for real.
struct Xl;

impl Toolstack for Xl {
    fn vcpu_set(&self, name: &str, count: u32) {
        xl(&["vcpu-set", name, &count.to_string()]);
    }

    fn vcpu_pin(&self, name: &str, vcpu: u32, cpus: &str) {
        xl(&["vcpu-pin", name, &vcpu.to_string(), cpus]);
    }

    fn create(&self, name: &str) -> DomId {
        let path = format!("/tmp/{name}.cfg");
        std::fs::write(&path, guest_config(name, "")).unwrap();
        xl(&["create", "-p", &path]);
        DomId(xl(&["domid", name]).trim().parse().unwrap())
    }

    fn destroy(&self, name: &str) {
        xl(&["destroy", name]);
    }

    /// Parses `xl vcpu-list NAME`: `Name ID VCPU CPU State Time(s) Hard / Soft`, where
    /// an offline vCPU's CPU is `-` and its State `--p`.
    fn vcpu_list(&self, name: &str) -> Vec<(String, String)> {
        let out = xl(&["vcpu-list", name]);
        out.lines()
            .skip(1)
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                assert!(words.len() >= 9 && words[words.len() - 2] == "/", "xl vcpu-list line {line:?}");
                (words[4].to_owned(), words[words.len() - 3].to_owned())
            })
            .collect()
    }
}

fn lab_fixture() -> Fixture {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "run in the lab: tests/lab/lab.sh test");
    let guest = std::env::var("XENVCPU_LAB_GUEST").expect("XENVCPU_LAB_GUEST");
    let counter = Counting::new(Arc::new(XenCtrlBackend::open().expect("libxenctrl in the lab")));
    let host = Host::with_shared_backend(counter.clone()).unwrap();
    Fixture { host, counter, guest, xl: Box::new(Xl), follow: Duration::from_secs(90) }
}

agent_suite!(lab_fixture, ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)");

fn xenvcpu() -> Command {
    Command::new(std::env::var("XENVCPU_BIN").expect("XENVCPU_BIN"))
}

/// `xenvcpu agent --once`: 1 when a policy file is refused, with the good one applied;
/// then 0, with no write at all, once everything is right.
#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn the_command_once_exits_by_what_failed_and_rewrites_nothing_right() {
    let f = lab_fixture();
    f.with_guest_restored(|| {
        let broken = "<domain><name>x</name><vcpu>2</vcpu>";
        let dir = policy_dir(&[("broken.xml", broken), ("guest.xml", &guest_policy(&f.guest))]);
        let state = scratch("cli-state");
        let run = |extra: &[&str]| {
            let mut cmd = xenvcpu();
            cmd.args(["agent", "--once", "--json", "--policy"]).arg(&dir).arg("--state-dir").arg(&state).args(extra);
            let out = cmd.output().unwrap();
            let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
                .collect();
            (out.status.code(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let (code, lines, stderr) = run(&[]);
        assert_eq!(code, Some(1), "a refused file fails the pass: {lines:#?} {stderr}");
        let refused = lines.iter().find(|l| l["event"] == "policy_refused").expect("policy_refused");
        assert!(refused["line"].as_u64().is_some() && refused["column"].as_u64().is_some(), "{refused}");
        let summary = lines.last().unwrap();
        assert_eq!((summary["event"].as_str(), summary["writes"].as_u64()), (Some("summary"), Some(4)), "{lines:#?}");
        assert_eq!(f.maps(&f.guest()), PLACED);

        std::fs::remove_file(dir.join("broken.xml")).unwrap();
        let (code, lines, stderr) = run(&[]);
        assert_eq!(code, Some(0), "{lines:#?} {stderr}");
        let summary = lines.last().unwrap();
        assert_eq!((summary["domains"].as_u64(), summary["writes"].as_u64()), (Some(1), Some(0)), "{lines:#?}");
    });
}

/// `xenvcpu agent` as a daemon: one JSON object per line, the introduction of a guest
/// placed, and SIGTERM stops it cleanly (exit 0, a last `stopped` line).
#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn the_command_runs_until_sigterm_and_reports_json_lines() {
    let f = lab_fixture();
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let mut child = xenvcpu()
            .args(["agent", "--json", "--interval", "1", "--policy"])
            .arg(&dir)
            .arg("--state-dir")
            .arg(scratch("daemon-state"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || -> serde_json::Value {
            let line = lines.next().expect("a line").unwrap();
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
        };
        assert_eq!(next()["event"], "loaded");
        let start = next();
        assert_eq!((start["event"].as_str(), start["cause"].as_str()), (Some("reconciled"), Some("start")), "{start}");
        assert_eq!(f.maps(&f.guest()), PLACED);
        xl(&["vcpu-pin", &f.guest, "0", "2"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = next();
            if line["cause"] == "periodic" && !line["drift"].as_array().unwrap().is_empty() {
                assert_eq!(line["drift"][0]["vcpu"], 0, "{line}");
                break;
            }
            assert!(Instant::now() < deadline, "no drift reported");
        }
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
        let status = child.wait().unwrap();
        let rest: Vec<serde_json::Value> =
            std::iter::from_fn(|| lines.next()).map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
        assert_eq!(status.code(), Some(0), "{rest:#?}");
        assert_eq!(rest.last().map(|l| l["event"].clone()), Some("stopped".into()), "{rest:#?}");
    });
}

/// The daemon is killed (SIGKILL: no chance to save anything) after an unplug dropped a
/// `<vcpupin>`, and restarted: it repins nothing, which its write count shows.
#[test]
#[ignore = "lab: needs a real Xen and its PV guest (run tests/lab/lab.sh test)"]
fn a_killed_and_restarted_daemon_writes_nothing() {
    let f = lab_fixture();
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let state = scratch("killed-state");
        let mut child = xenvcpu()
            .args(["agent", "--json", "--interval", "0", "--policy"])
            .arg(&dir)
            .arg("--state-dir")
            .arg(&state)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut until = |what: &str, ok: &dyn Fn(&serde_json::Value) -> bool| loop {
            let line = lines.next().unwrap_or_else(|| panic!("the agent ended before {what}")).unwrap();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            if ok(&value) {
                return value;
            }
        };
        until("the start pass", &|v| v["cause"] == "start");
        f.vcpu_set(4);
        until("the hotplug", &|v| v["cause"] == "availability");
        f.vcpu_set(2);
        let unplugged = until("the unplug", &|v| v["event"] == "unplugged");
        assert_eq!(unplugged["dropped"], "3", "{unplugged}");
        until("the re-pin", &|v| v["cause"] == "availability");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(f.maps(&f.guest()), ["0-1"; 4]);

        let out = xenvcpu()
            .args(["agent", "--once", "--json", "--policy"])
            .arg(&dir)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert_eq!((summary["domains"].as_u64(), summary["writes"].as_u64()), (Some(1), Some(0)), "{text}");
        assert_eq!(f.maps(&f.guest()), ["0-1"; 4], "vCPU 3 kept the cpuset it inherited");
    });
}
