//! The command driven in-process against the simulated platform with arbitrary argument
//! vectors: it never panics, always exits 0, 1, 2 or 3, and a usage error (2) leaves the
//! simulated host and its store exactly as they were. Plus the hardening cases found by
//! hand, each pinned down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use clap::Parser;
use xenvcpu::cli::{self, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use xenvcpu::hypervisor::SimSnapshot;
use xenvcpu::sim::SimPlatform;

/// A small deterministic generator (xorshift64*), so every failure is reproducible from
/// its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const SUBCOMMANDS: &[&str] =
    &["info", "list", "pin", "set", "state", "maps", "apply", "emulatorpin", "bench", "help", "", "frob"];
const DOMAINS: &[&str] =
    &["labguest", "Domain-0", "hvmguest", "0", "1", "2", "3", "99", "-1", "", "nosuch", "4294967296", " 1"];
const NUMBERS: &[&str] =
    &["0", "1", "2", "3", "4", "5", "-1", "4294967295", "4294967296", "1e20", "nan", "abc", "", "0x2"];
const CPU_LISTS: &[&str] = &[
    "all",
    "0",
    "0-3",
    "^1",
    "0-3,^2",
    "node:0",
    "nodes:0-1",
    "node:7",
    "4",
    "9999",
    "-",
    "3-1",
    ",",
    "all,^0,^1,^2,^3",
    "99999999999",
    "1,3",
    "0-",
    "",
];
const WAITS: &[&str] = &["0", "0.2", "-1", "1e20", "nan", "inf", "abc", "", "3601", "-0"];
const FLAGS: &[&str] = &[
    "--json",
    "--force",
    "-f",
    "--ignore-host",
    "--commit",
    "--help",
    "-h",
    "--version",
    "--bogus",
    "--wait",
    "--vcpus",
    "--iterations",
    "--nodeset",
    "--iterations=0",
    "--iterations=3",
    "--iterations=4294967295",
    "--iterations=-1",
];

/// Files `apply` may be given: a valid placement, garbage, a missing file, a directory.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = std::env::temp_dir().join(format!("xenvcpu-cli-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ok.xml"),
            "<domain><vcpu placement='static' cpuset='0-1'>4</vcpu><cputune><vcpupin vcpu='1' cpuset='3'/></cputune></domain>",
        )
        .unwrap();
        std::fs::write(dir.join("two.xml"), "<domain><vcpu>2</vcpu></domain>").unwrap();
        std::fs::write(dir.join("garbage.xml"), [0xff, 0x00, b'<', b'd']).unwrap();
        Files { dir }
    }

    fn paths(&self) -> Vec<String> {
        ["ok.xml", "two.xml", "garbage.xml", "missing.xml", ""]
            .iter()
            .map(|f| self.dir.join(f).display().to_string())
            .collect()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An argument vector: half the time shaped like a subcommand's (so the deep paths are
/// reached), half the time tokens in any order.
fn argv(rng: &mut Rng, files: &[String]) -> Vec<String> {
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut args = vec!["xenvcpu".to_string()];
    let push = |args: &mut Vec<String>, s: &str| args.push(s.to_string());
    if rng.chance(50) {
        match rng.pick(&["info", "list", "pin", "set", "state", "maps", "apply", "emulatorpin", "bench"]) {
            "info" => push(&mut args, "info"),
            "list" => {
                push(&mut args, "list");
                for _ in 0..rng.next() % 3 {
                    push(&mut args, rng.pick(DOMAINS));
                }
            }
            "pin" => {
                push(&mut args, "pin");
                push(&mut args, rng.pick(DOMAINS));
                push(&mut args, rng.pick(CPU_LISTS));
                push(&mut args, rng.pick(CPU_LISTS));
                if rng.chance(50) {
                    push(&mut args, rng.pick(CPU_LISTS));
                }
            }
            "set" => {
                push(&mut args, "set");
                push(&mut args, rng.pick(DOMAINS));
                push(&mut args, rng.pick(NUMBERS));
            }
            "state" => {
                push(&mut args, "state");
                push(&mut args, rng.pick(DOMAINS));
                push(&mut args, rng.pick(CPU_LISTS));
                push(&mut args, rng.pick(&["on", "off", "maybe", ""]));
            }
            "maps" => {
                push(&mut args, "maps");
                push(&mut args, rng.pick(DOMAINS));
            }
            "apply" => {
                push(&mut args, "apply");
                push(&mut args, rng.pick(DOMAINS));
                push(&mut args, rng.pick(&files));
                if rng.chance(30) {
                    push(&mut args, "--nodeset");
                    push(&mut args, rng.pick(CPU_LISTS));
                }
            }
            "emulatorpin" => {
                push(&mut args, "emulatorpin");
                push(&mut args, rng.pick(DOMAINS));
                push(&mut args, rng.pick(CPU_LISTS));
            }
            _ => {
                push(&mut args, "bench");
                push(&mut args, rng.pick(&["pin", "pin", "frob"]));
                push(&mut args, rng.pick(DOMAINS));
                if rng.chance(50) {
                    push(&mut args, "--iterations");
                    push(&mut args, rng.pick(NUMBERS));
                }
                if rng.chance(30) {
                    push(&mut args, "--vcpus");
                    push(&mut args, rng.pick(CPU_LISTS));
                }
            }
        }
        for _ in 0..rng.next() % 3 {
            let flag = rng.pick(FLAGS);
            push(&mut args, flag);
            if flag == "--wait" {
                push(&mut args, rng.pick(WAITS));
            }
        }
        if rng.chance(30) {
            push(&mut args, "--wait");
            push(&mut args, rng.pick(WAITS));
        }
    } else {
        for _ in 0..rng.next() % 7 {
            let token = match rng.next() % 6 {
                0 => rng.pick(SUBCOMMANDS),
                1 => rng.pick(DOMAINS),
                2 => rng.pick(NUMBERS),
                3 => rng.pick(CPU_LISTS),
                4 => rng.pick(FLAGS),
                _ => rng.pick(&files),
            };
            push(&mut args, token);
            if token == "--wait" {
                push(&mut args, rng.pick(WAITS));
            }
        }
    }
    args
}

/// What a command could have changed: the host's domains and the whole store.
fn state(sim: &SimPlatform) -> (SimSnapshot, Option<std::collections::BTreeMap<String, Vec<u8>>>) {
    (sim.hv.snapshot(), sim.store.tree("/"))
}

/// Runs one command line in-process on a fresh lab-shaped platform; returns its exit code
/// and whether the platform changed.
fn run(args: &[String]) -> (u8, bool) {
    let sim = SimPlatform::lab_like().unwrap();
    let before = state(&sim);
    let code = catch_unwind(AssertUnwindSafe(|| cli::run(args, Some(&sim))))
        .unwrap_or_else(|_| panic!("xenvcpu {args:?} panicked"));
    (code, state(&sim) != before)
}

#[test]
fn arbitrary_arguments_never_panic_and_usage_errors_change_nothing() {
    let files = Files::new();
    let paths = files.paths();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seen = [0usize; 4];
    for case in 0..400 {
        let args = argv(&mut rng, &paths);
        let (code, changed) = run(&args);
        assert!(code <= 3, "case {case}: xenvcpu {args:?} exited {code}");
        if code == EXIT_USAGE {
            assert!(!changed, "case {case}: xenvcpu {args:?} exited 2 but changed the host or the store");
        }
        seen[code as usize] += 1;
    }
    // The generator reaches every class: successes, refusals and usage errors.
    assert!(seen[0] > 20 && seen[2] > 100, "exit codes seen: {seen:?}");
}

fn args(line: &str) -> Vec<String> {
    std::iter::once("xenvcpu").chain(line.split(' ')).map(String::from).collect()
}

#[test]
fn bad_wait_and_iterations_are_usage_errors_before_anything_is_written() {
    for line in [
        "set labguest 3 --wait=1e20",
        "set labguest 3 --wait=-1",
        "set labguest 3 --wait=nan",
        "set labguest 3 --wait=inf",
        "set labguest 3 --wait=3601",
        "state labguest 2 on --wait=abc",
        "bench pin labguest --iterations 4294967295",
        "bench pin labguest --iterations 0",
        "bench pin labguest --iterations=-1",
    ] {
        assert_eq!(run(&args(line)), (EXIT_USAGE, false), "{line}");
    }
    assert_eq!(run(&args("set labguest 3 --wait 0.5")), (EXIT_OK, true));
}

#[test]
fn set_refuses_to_overcommit_the_host_unless_told_to_ignore_it() {
    // The lab-shaped host has 4 CPUs online; a 6-vCPU guest may not have more than 4 on.
    use xenvcpu::hypervisor::{SimConfig, SimDomain};
    use xenvcpu::sim::SimGuest;
    let sim = SimPlatform::new(
        SimConfig::default(),
        &[
            SimGuest { domain: SimDomain { domid: 0, max_vcpus: 4, online: 4, hvm: false }, name: "Domain-0".into() },
            SimGuest { domain: SimDomain { domid: 3, max_vcpus: 6, online: 2, hvm: false }, name: "wide".into() },
        ],
    )
    .unwrap();
    let before = state(&sim);
    assert_eq!(cli::run(args("set wide 5"), Some(&sim)), EXIT_USAGE);
    assert_eq!(cli::run(args("state wide 2-4 on"), Some(&sim)), EXIT_USAGE);
    assert!(state(&sim) == before, "nothing written");
    assert_eq!(cli::run(args("set wide 4"), Some(&sim)), EXIT_OK);
    assert_eq!(cli::run(args("set wide 6 --ignore-host"), Some(&sim)), EXIT_OK);
}

#[test]
fn list_skips_a_domain_destroyed_mid_listing_but_a_named_one_fails() {
    let sim = SimPlatform::lab_like().unwrap();
    // The listing (1 call) sees domain 2; it is gone before its vCPUs are read.
    sim.hv.remove_domain(2);
    assert_eq!(cli::run(args("list"), Some(&sim)), EXIT_OK);
    assert_eq!(cli::run(args("list 2"), Some(&sim)), EXIT_USAGE, "a named domain that is absent is an error");
}

#[test]
fn bench_pin_restores_every_vcpu_it_touched_when_an_update_fails() {
    let sim = SimPlatform::lab_like().unwrap();
    assert_eq!(cli::run(args("pin labguest 1 2"), Some(&sim)), EXIT_OK);
    let before = sim.hv.snapshot();
    // Reading the saved state takes 2 calls per vCPU (4 vCPUs); then each update is an
    // identity check and a set: fail the 6th set, after every vCPU was touched.
    sim.hv.fail_nth_call(4 * 2 + 6 * 2, libc::EIO);
    assert_eq!(cli::run(args("bench pin labguest --iterations 100"), Some(&sim)), EXIT_FAILED);
    assert_eq!(sim.hv.snapshot(), before, "every vCPU got its affinity back");
    assert_eq!(cli::run(args("bench pin labguest --iterations 100"), Some(&sim)), EXIT_OK);
    assert_eq!(sim.hv.snapshot(), before, "and after a successful run too");
}

/// The systemd unit's command line is one `xenvcpu agent` accepts (with the defaults of
/// its environment variables).
#[test]
fn the_systemd_unit_starts_a_valid_agent_command() {
    let unit = include_str!("../contrib/xenvcpu-agent.service");
    let mut env = std::collections::HashMap::new();
    for line in unit.lines().filter_map(|l| l.strip_prefix("Environment=")) {
        let (k, v) = line.split_once('=').unwrap();
        env.insert(k.to_owned(), v.to_owned());
    }
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let mut words: Vec<String> = Vec::new();
    for word in exec.split_whitespace() {
        let name = word.trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
        match env.get(name).filter(|_| word.starts_with('$')) {
            Some(value) => words.extend(value.split_whitespace().map(str::to_owned)),
            None => words.push(word.to_owned()),
        }
    }
    assert!(words[0].ends_with("/xenvcpu") && words[1] == "agent", "{words:?}");
    let args = xenvcpu::cli::Args::try_parse_from(&words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    assert!(matches!(args.command, xenvcpu::cli::Command::Agent { once: false, .. }), "{args:?}");
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "reload is SIGHUP");
}
