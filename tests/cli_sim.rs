//! The `xenvcpu` binary against the simulated lab-shaped host (`XENVCPU_BACKEND=sim`):
//! every subcommand's output shape and `--json` schema (the field names the README
//! documents), the exit code of each documented class of error, and `--help` of every
//! subcommand. The simulated platform is made anew by each process, so every command
//! starts from the lab's shape: 4 CPUs, dom0 (4 vCPUs), `labguest` (domain 1, PV, 2 of 4
//! vCPUs online) and `hvmguest` (domain 2, HVM, 2 vCPUs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn run_env(args: &[&str], backend: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xenvcpu"));
    cmd.args(args).env_remove("XENVCPU_BACKEND").env_remove("XENVCPU_LIBXENCTRL");
    if let Some(b) = backend {
        cmd.env("XENVCPU_BACKEND", b);
    }
    cmd.output().expect("run xenvcpu")
}

/// A fresh scratch directory for one test (`what` tells the tests apart).
fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xenvcpu-cli-sim-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to the file `name` in `dir`; returns its path for a command line.
fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_owned()
}

fn run(args: &[&str]) -> Output {
    run_env(args, Some("sim"))
}

/// Succeeds; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xenvcpu {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap_or_else(|e| panic!("xenvcpu {args:?}: not JSON: {e}"))
}

/// Fails with `code` and one stderr line that mentions `words`.
fn fails(args: &[&str], code: i32, words: &str) {
    fails_env(args, Some("sim"), code, words);
}

fn fails_env(args: &[&str], backend: Option<&str>, code: i32, words: &str) {
    let out = run_env(args, backend);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "xenvcpu {args:?}: {stderr}");
    assert!(stderr.contains(words), "xenvcpu {args:?}: {stderr:?} should mention {words:?}");
    assert!(stderr.starts_with("xenvcpu: "), "{stderr:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(out.stdout.is_empty() || code == 1, "nothing on stdout for a refused command: {:?}", out.stdout);
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}

fn set_of(names: &[&'static str]) -> BTreeSet<&'static str> {
    names.iter().copied().collect()
}

// ---- output shapes and JSON schemas ------------------------------------------------------

#[test]
fn info_prints_the_host_and_its_json_has_the_documented_fields() {
    let text = ok(&["info"]);
    for label in ["CPUs online", "online CPU list", "sockets", "cores per socket", "threads per core", "NUMA nodes"] {
        assert!(text.lines().any(|l| l.starts_with(label)), "{label:?} in {text}");
    }
    assert!(text.contains("4 of 4 (max CPU id 3)"), "{text}");
    let rows: Vec<&str> = text.lines().skip_while(|l| !l.trim_start().starts_with("cpu ")).skip(1).collect();
    assert_eq!(rows.len(), 4, "one topology row per CPU: {text}");

    let v = json(&["info", "--json"]);
    assert_eq!(
        keys(&v),
        set_of(&[
            "nr_cpus_online",
            "max_cpu_id",
            "nr_cpu_ids",
            "sockets",
            "cores_per_socket",
            "threads_per_core",
            "nr_nodes",
            "cpu_khz",
            "cpus"
        ])
    );
    assert_eq!(
        (v["nr_cpus_online"].as_u64(), v["max_cpu_id"].as_u64(), v["nr_cpu_ids"].as_u64()),
        (Some(4), Some(3), Some(4))
    );
    let cpus = v["cpus"].as_array().unwrap();
    assert_eq!(cpus.len(), 4);
    for (i, cpu) in cpus.iter().enumerate() {
        assert_eq!(keys(cpu), set_of(&["cpu", "online", "core", "socket", "node"]));
        assert_eq!(cpu["cpu"].as_u64(), Some(i as u64));
        assert_eq!(cpu["online"], Value::Bool(true));
    }
}

#[test]
fn list_is_shaped_like_xl_vcpu_list_and_its_json_has_the_documented_fields() {
    let text = ok(&["list"]);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for column in ["Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Pool", "Affinity (Hard / Soft)"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 4 + 4 + 2, "{text}");
    let guest: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "labguest").collect();
    assert_eq!(guest.len(), 4);
    assert_eq!(&guest[2][..5], ["labguest", "1", "2", "-", "offline"], "an offline vCPU has no CPU");
    assert!(guest.iter().all(|r| r[r.len() - 3..] == ["all", "/", "all"]), "{text}");
    assert!(rows.iter().all(|r| r[r.len() - 4] == "Pool-0"), "every domain in Pool-0: {text}");

    let one = ok(&["list", "labguest"]);
    assert_eq!(one.lines().count(), 1 + 4, "{one}");
    let v = json(&["list", "--json", "1", "Domain-0"]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 4 + 4);
    for row in rows {
        assert_eq!(
            keys(row),
            set_of(&["domain", "domid", "pool", "poolid", "vcpu", "cpu", "state", "time_ns", "hard", "soft"])
        );
        assert_eq!((row["pool"].as_str(), row["poolid"].as_u64()), (Some("Pool-0"), Some(0)));
        assert_eq!(row["hard"], "0-3", "canonical cpu-lists, never `all`");
        assert!(["running", "blocked", "runnable", "offline"].contains(&row["state"].as_str().unwrap()));
    }
    let offline = rows.iter().find(|r| r["domid"] == 1 && r["vcpu"] == 3).unwrap();
    assert_eq!((offline["cpu"].clone(), offline["state"].as_str()), (Value::Null, Some("offline")));
    assert_eq!(rows[0]["domain"], "labguest", "in the order asked");
}

#[test]
fn pin_prints_the_effective_affinity() {
    assert_eq!(ok(&["pin", "labguest", "1", "2"]), "domain 1 vCPU 1: hard 2 / soft (unchanged)\n");
    assert_eq!(ok(&["pin", "labguest", "0-1", "-", "1-3"]).lines().count(), 2);
    let out = ok(&["pin", "1", "all", "0,2", "0"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().all(|l| l.ends_with("hard 0,2 / soft 0")), "{out}");
}

#[test]
fn set_and_state_report_the_request_and_wait_reports_the_guest() {
    let out = ok(&["set", "labguest", "3", "--wait", "5"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "domain 1: vCPUs 0-2 requested online (before: 0-1)");
    assert!(lines[1].starts_with("domain 1: the guest followed in "), "{out}");
    assert_eq!(ok(&["set", "labguest", "2"]), "domain 1: vCPUs 0-1 already requested online: nothing to change\n");
    assert_eq!(ok(&["state", "labguest", "3", "on"]), "domain 1: vCPUs 0-1,3 requested online (before: 0-1)\n");
    assert_eq!(ok(&["state", "labguest", "1", "off"]), "domain 1: vCPUs 0 requested online (before: 0-1)\n");
}

#[test]
fn maps_prints_every_map_and_its_json_has_the_documented_fields() {
    assert_eq!(
        ok(&["maps", "labguest"]),
        "possible   : 0-3\nonline     : 0-1\nrequested  : 0-1\nonlinable  : 2-3\nofflinable : 1\n"
    );
    let v = json(&["maps", "labguest", "--json"]);
    assert_eq!(keys(&v), set_of(&["domid", "possible", "online", "requested", "onlinable", "offlinable"]));
    assert_eq!(v["requested"], "0-1");
    let dom0 = json(&["maps", "Domain-0", "--json"]);
    assert_eq!(dom0["requested"], Value::Null, "dom0 has no availability nodes");
}

#[test]
fn apply_auto_without_nodeset_uses_the_domains_node_affinity_and_warns_when_it_is_every_node() {
    let dir = scratch("auto");
    let file = &write_file(&dir, "auto.xml", "<domain><vcpu placement='auto'>4</vcpu></domain>");

    let out = run(&["apply", "labguest", file, "--commit"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "xenvcpu: warning: domain 1: node affinity is all nodes; placement='auto' uses all nodes"
    );
    assert!(stdout.contains("0         0-3   advisory nodeset"), "{stdout}");
    assert!(stdout.contains("domain 1 vCPU 1: hard all / soft (unchanged)"), "{stdout}");

    // An explicit --nodeset wins, without a warning.
    let out = run(&["apply", "labguest", file, "--nodeset", "0"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    // A static placement never asks for the node affinity.
    std::fs::write(file, "<domain><vcpu cpuset='1'>4</vcpu></domain>").unwrap();
    let out = run(&["apply", "labguest", file]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn apply_shows_the_table_and_commits_only_when_asked() {
    let dir = scratch("apply");
    let file = &write_file(
        &dir,
        "placement.xml",
        "<domain><vcpu cpuset='0-1'>4</vcpu><cputune><vcpupin vcpu='1' cpuset='3'/></cputune></domain>",
    );
    let dry = ok(&["apply", "labguest", file]);
    assert!(dry.contains("dry run: nothing applied"), "{dry}");
    let committed = ok(&["apply", "labguest", file, "--commit"]);
    assert!(!committed.contains("dry run"), "{committed}");
    assert!(committed.contains("domain 1 vCPU 0: hard 0-1 / soft (unchanged)"), "{committed}");
    assert!(committed.contains("domain 1 vCPU 1: hard 3 / soft (unchanged)"), "{committed}");
    assert!(committed.contains("domain 1 vCPU 3: hard 0-1"), "offline vCPUs are pinned too: {committed}");
    assert!(committed.contains("emulator: none (a PV domain runs without an emulator)"), "{committed}");
    fails(&["apply", "labguest", "/nonexistent.xml"], 2, "/nonexistent.xml: cannot read it");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn apply_refuses_another_domains_file_unless_forced_and_a_file_for_another_count() {
    let dir = scratch("other");
    let write = |name: &str, text: &str| write_file(&dir, name, text);
    let other = write("other.xml", "<domain><name>otherguest</name><vcpu cpuset='2'>4</vcpu></domain>");
    fails(
        &["apply", "labguest", &other, "--commit"],
        2,
        "is the policy of another domain: its <name>otherguest</name>",
    );
    let forced = ok(&["apply", "labguest", &other, "--commit", "--force"]);
    assert!(forced.contains("domain 1 vCPU 0: hard 2"), "{forced}");
    let uuid = write("uuid.xml", "<domain><uuid>00000000-0000-0000-0000-0000000000aa</uuid><vcpu>4</vcpu></domain>");
    fails(&["apply", "labguest", &uuid], 2, "<uuid>00000000-0000-0000-0000-0000000000aa</uuid>");
    let eight = write("eight.xml", "<domain><name>labguest</name><vcpu cpuset='0-1'>8</vcpu></domain>");
    let out = run(&["apply", "labguest", &eight]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no table for a file that does not fit: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is for 8 vCPUs") && stderr.contains("has 4"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file of another domain is refused by `apply`, `set --policy` and `state --policy`,
/// each with a hint it can follow: only `apply` has `--force`; `set` and `state` say what
/// to do instead.
#[test]
fn another_domains_policy_is_refused_with_a_hint_for_each_command() {
    let dir = scratch("hint");
    let other = &write_file(&dir, "other.xml", "<domain><name>otherguest</name><vcpu cpuset='2'>4</vcpu></domain>");
    let refusal = "is the policy of another domain: its <name>otherguest</name> (the domain is named labguest); \
                   nothing was applied to labguest";
    let stderr = |args: &[&str]| {
        let out = run(args);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "xenvcpu {args:?}: {text}");
        assert!(out.stdout.is_empty(), "xenvcpu {args:?}: {:?}", out.stdout);
        assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
        assert!(text.contains(refusal), "xenvcpu {args:?}: {text}");
        text
    };

    let apply = stderr(&["apply", "labguest", other, "--commit"]);
    assert!(apply.trim_end().ends_with("(apply it anyway with --force)"), "{apply}");

    for (command, args) in [
        ("set", vec!["set", "labguest", "3", "--policy", other]),
        ("state", vec!["state", "labguest", "2", "on", "--policy", other]),
    ] {
        let text = stderr(&args);
        assert!(!text.contains("anyway with --force"), "{command} has no --force to suggest: {text}");
        let hint = format!(
            "({command} has no --force: correct the file's <name> or <uuid>, or pin by it anyway with \
             `xenvcpu apply labguest {other} --commit --force` and run {command} without --policy)"
        );
        assert!(text.trim_end().ends_with(&hint), "{command}: {text}");
        // The hint's own command is accepted: --force is an option of apply.
        assert!(ok(&["apply", "labguest", other, "--commit", "--force"]).contains("domain 1 vCPU 0: hard 2"));
    }
    // Neither set nor state takes --force (a usage error from the parser): the hint does
    // not send the user to it.
    for args in
        [vec!["set", "labguest", "3", "--policy", other, "--force"], vec!["state", "labguest", "2", "on", "--force"]]
    {
        let out = run(&args);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains("unexpected argument '--force'"), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn agent_once_reports_json_lines_and_fails_on_a_broken_file() {
    let dir = scratch("agent");
    std::fs::create_dir_all(dir.join("autostart")).unwrap();
    std::fs::write(dir.join("labguest.xml"), "<domain><name>labguest</name><vcpu cpuset='0-1'>4</vcpu></domain>")
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
    let state = dir.join("state");
    let (d, st) = (dir.to_str().unwrap(), state.to_str().unwrap());
    let args = ["agent", "--once", "--json", "--policy", d, "--state-dir", st];
    let lines: Vec<Value> = ok(&args).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["event"], "loaded");
    assert_eq!(lines[0]["policies"], 1, "only *.xml files directly in the directory: {lines:#?}");
    let placed = &lines[1];
    assert_eq!((placed["event"].as_str(), placed["name"].as_str()), (Some("reconciled"), Some("labguest")));
    assert_eq!(placed["changed"].as_array().unwrap().len(), 4, "offline vCPUs too: {placed}");
    assert_eq!(placed["emulator"]["state"], "none");
    assert_eq!(lines.last().unwrap()["event"], "summary");

    std::fs::write(dir.join("broken.xml"), "<domain>\n<vcpu>2</vcpu>\n<cputune>\n</domain>").unwrap();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "a refused file fails --once");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let refused = lines.iter().find(|l| l["event"] == "policy_refused").expect("reported");
    assert_eq!((refused["line"].as_u64(), refused["column"].as_u64()), (Some(4), Some(1)), "{refused}");
    assert!(lines.iter().any(|l| l["event"] == "reconciled" && l["name"] == "labguest"), "the good one applies");
    fails(&["agent", "--policy", "/nonexistent-dir", "--once"], 2, "policy directory /nonexistent-dir");
    for bad in ["--interval=-1", "--interval=86401", "--interval=x"] {
        let out = run(&["agent", "--policy", d, bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("give 0 (no periodic check) to 86400") || stderr.contains("not a number"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_pin_json_has_the_documented_fields() {
    let v = json(&["bench", "pin", "labguest", "--iterations", "50", "--json"]);
    assert_eq!(keys(&v), set_of(&["domid", "vcpus", "iterations", "updates_per_sec", "p50_ns", "p99_ns", "mean_ns"]));
    assert_eq!((v["domid"].as_u64(), v["vcpus"].as_str(), v["iterations"].as_u64()), (Some(1), Some("0-3"), Some(50)));
    assert!(v["updates_per_sec"].as_f64().unwrap() > 0.0);
    let text = ok(&["bench", "pin", "labguest", "--vcpus", "1", "--iterations", "10"]);
    assert!(text.starts_with("domain 1 vCPUs 1: 10 updates in "), "{text}");
}

// ---- exit codes --------------------------------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    fails(&["list", "nosuch"], 2, "no domain named \"nosuch\"");
    fails(&["maps", "99"], 2, "no domain with id 99");
    fails(&["pin", "labguest", "1", "0-3,^"], 2, "not a CPU number or range");
    fails(&["pin", "labguest", "1", "7"], 2, "CPU 7 beyond the host, which has CPUs 0-3");
    fails(&["pin", "labguest", "4", "1"], 2, "domain 1 has no vCPU 4");
    fails(&["set", "labguest", "0"], 2, "can have 1 to 4 vCPUs online");
    fails(&["set", "labguest", "5"], 2, "can have 1 to 4 vCPUs online");
    fails(&["state", "labguest", "0", "off"], 2, "vCPU 0 of domain 1 cannot be taken offline");
    fails(&["emulatorpin", "labguest", "0"], 2, "a PV domain runs without an emulator");
    fails(&["emulatorpin", "hvmguest", "0"], 2, "stub domain");
    // clap's own usage errors (several lines of help, also exit 2).
    for args in [&["set", "labguest", "3", "--wait", "-5"][..], &["bench", "pin", "1", "--iterations", "0"], &["frob"]]
    {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "), "{args:?}");
    }
}

#[test]
fn refusals_of_xen_or_the_guest_exit_1() {
    fails(&["set", "hvmguest", "1"], 1, "unsupported for HVM guests");
    // dom0 has nobody following its availability nodes in the simulation.
    let out = run(&["set", "Domain-0", "2", "--wait", "0.2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("had not followed the request"), "{stderr}");
    assert!(!stderr.contains("  "), "no runs of spaces: {stderr:?}");
}

#[test]
fn no_xen_here_exits_3() {
    // This host is not a Xen dom0 (tests run on plain Linux and, in the lab, in dom0 where
    // this test is not run: it is a host test).
    assert!(!std::path::Path::new("/dev/xen/privcmd").exists(), "a host test: not for a dom0");
    for args in [&["info"][..], &["list"], &["pin", "0", "0", "0"], &["set", "1", "2"], &["maps", "0"]] {
        fails_env(args, None, 3, "not running on a Xen hypervisor");
    }
    fails_env(&["info"], Some("bogus"), 2, "XENVCPU_BACKEND=\"bogus\": use xenctrl or sim");
}

// ---- help ---------------------------------------------------------------------------------
#[test]
fn pools_is_shaped_like_xl_cpupool_list_and_its_json_has_the_documented_fields() {
    let text = ok(&["pools"]);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for column in ["Name", "CPU list", "ID", "Sched", "Domains"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [["Pool-0", "0-3", "0", "credit2", "3"]], "{text}");
    let v = json(&["pools", "--json"]);
    let pools = v.as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(keys(&pools[0]), set_of(&["name", "id", "scheduler", "cpus", "nr_cpus", "domains"]));
    assert_eq!(
        (&pools[0]["name"], &pools[0]["cpus"], &pools[0]["scheduler"], &pools[0]["domains"]),
        (&Value::from("Pool-0"), &Value::from("0-3"), &Value::from("credit2"), &Value::from(3))
    );
}

#[test]
fn every_subcommand_has_help() {
    let top = ok(&["--help"]);
    let subcommands = [
        "info",
        "list",
        "pools",
        "pin",
        "set",
        "state",
        "maps",
        "apply",
        "emulatorpin",
        "capabilities",
        "agent",
        "cpu",
        "bench",
    ];
    for sub in subcommands {
        assert!(top.contains(&format!("  {sub} ")), "{sub} in --help: {top}");
        let help = ok(&[sub, "--help"]);
        assert!(help.contains(&format!("Usage: xenvcpu {sub}")), "{sub}: {help}");
    }
    let bench = ok(&["bench", "pin", "--help"]);
    assert!(bench.contains("--iterations") && bench.contains("--vcpus") && bench.contains("--json"), "{bench}");
    assert!(ok(&["set", "--help"]).contains("--ignore-host"));
    assert!(ok(&["state", "--help"]).contains("--ignore-host"));
    assert!(ok(&["--version"]).starts_with("xenvcpu "));
}

// ---- completions and man page ----------------------------------------------------------------

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, marker) in
        [("bash", "complete -F _xenvcpu"), ("zsh", "#compdef xenvcpu"), ("fish", "complete -c xenvcpu")]
    {
        let script = ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {marker:?} missing");
        for sub in ["list", "pin", "emulatorpin", "bench", "ignore-host", "iterations"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    // Neither needs Xen: it works on a host without it.
    assert!(run_env(&["completions", "bash"], None).status.success());
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn the_man_page_is_generated_for_the_command_and_each_subcommand() {
    let page = ok(&["man"]);
    assert!(page.contains(".TH xenvcpu 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"), "{page}");
    for sub in
        ["info", "list", "pin", "set", "state", "maps", "apply", "emulatorpin", "capabilities", "agent", "cpu", "bench"]
    {
        assert!(page.contains(sub), "man page lacks {sub}");
        let sub_page = ok(&["man", sub]);
        assert!(
            sub_page.contains(&format!(".TH xenvcpu\\-{sub} 1")) || sub_page.contains(&format!(".TH xenvcpu-{sub} 1")),
            "{sub_page}"
        );
    }
    assert!(ok(&["man", "set"]).contains("ignore\\-host"));
    assert!(run_env(&["man"], None).status.success(), "no Xen needed");
    fails(&["man", "frob"], 2, "no subcommand \"frob\"");
}

#[test]
fn agent_daemon_reloads_on_sighup_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = scratch("daemon");
    std::fs::write(dir.join("labguest.xml"), "<domain><name>labguest</name><vcpu cpuset='0-1'>4</vcpu></domain>")
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xenvcpu"))
        .args(["agent", "--json", "--policy"])
        .arg(&dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("XENVCPU_BACKEND", "sim")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value { serde_json::from_str(&lines.next().expect("a line").unwrap()).unwrap() };
    assert_eq!(next()["event"], "loaded");
    let start = next();
    assert_eq!((start["cause"].as_str(), start["writes"].as_u64()), (Some("start"), Some(4)), "{start}");

    std::fs::write(dir.join("labguest.xml"), "<domain><name>labguest</name><vcpu cpuset='2'>4</vcpu></domain>")
        .unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) }, 0);
    let loaded = next();
    assert_eq!(loaded["event"], "loaded", "{loaded}");
    assert_eq!(next()["event"], "released", "the old policy's domain is let go");
    let again = next();
    assert_eq!((again["cause"].as_str(), again["writes"].as_u64()), (Some("reload"), Some(4)), "{again}");
    assert!(again["changed"].as_array().unwrap().iter().all(|c| c["to"] == "2"), "{again}");

    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(next()["event"], "stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn capabilities_and_cpu_commands_on_the_simulated_lab() {
    let caps = ok(&["capabilities"]);
    let doc = roxmltree::Document::parse(&caps).unwrap();
    let cpu = doc.descendants().find(|n| n.has_tag_name("cpu")).unwrap();
    let topology = cpu.children().find(|n| n.has_tag_name("topology")).unwrap();
    assert_eq!((topology.attribute("sockets"), topology.attribute("cores")), (Some("1"), Some("4")), "{caps}");
    assert!(cpu.children().any(|n| n.has_tag_name("feature") && n.attribute("name") == Some("cx16")), "{caps}");
    let guests: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("guest")).collect();
    assert_eq!(guests.len(), 2, "PV and HVM: {caps}");
    assert!(guests.iter().all(|g| g.descendants().any(|n| n.has_tag_name("cpuselection"))), "{caps}");
    let caps = json(&["capabilities", "--json"]);
    assert_eq!(caps["host"]["cpu"]["vendor"], "AuthenticAMD");
    assert_eq!(caps["guests"][0]["type"], "xen");

    let dir = scratch("cpu");
    let write = |name: &str, text: &str| write_file(&dir, name, text);
    let fits = write("fits.xml", "<domain><vcpu>4</vcpu><cpu><feature policy='require' name='cx16'/><feature policy='disable' name='sse3'/></cpu></domain>");
    assert!(ok(&["cpu", "check", &fits]).contains("fits this host for a PV guest"));
    assert_eq!(ok(&["cpu", "cpuid", &fits]).trim(), "cpuid = \"host,cx16=1,sse3=0\"");
    let lacks =
        write("lacks.xml", "<cpu><feature policy='require' name='avx2'/><feature policy='require' name='sha'/></cpu>");
    fails(&["cpu", "check", &lacks], 1, "required but missing on the host: avx2, sha");
    fails(&["cpu", "check", &write("typo.xml", "<cpu><feature name='sse4_3'/></cpu>")], 2, "sse4-2");
    let out = run(&["cpu", "check", &fits, "--domain", "labguest", "--json"]);
    assert_eq!(out.status.code(), Some(1), "sse3 is present in labguest though disabled");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    let verdicts: Vec<(&str, &str)> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["feature"].as_str().unwrap(), f["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(verdicts, [("cx16", "as requested"), ("sse3", "present though disabled")]);

    let guest = dir.join("guest.json");
    let host = dir.join("host.json");
    std::fs::write(&guest, ok(&["cpu", "export", "--domain", "labguest"])).unwrap();
    std::fs::write(&host, ok(&["cpu", "export", "--type", "pv"])).unwrap();
    let (g, h) = (guest.to_str().unwrap(), host.to_str().unwrap());
    assert!(ok(&["cpu", "compare", g, h]).starts_with("compatible"));
    let mut smaller: Value = serde_json::from_str(&std::fs::read_to_string(&host).unwrap()).unwrap();
    smaller.as_object_mut().unwrap().remove("words");
    let features: Vec<Value> =
        smaller["features"].as_array().unwrap().iter().filter(|f| *f != "cx16").cloned().collect();
    smaller["features"] = Value::Array(features);
    std::fs::write(&host, smaller.to_string()).unwrap();
    fails(&["cpu", "compare", g, h], 1, "cx16");
    let _ = std::fs::remove_dir_all(&dir);
}
