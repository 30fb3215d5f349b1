//! Helpers of the lab-only tests: running dom0's commands, and the configs of throwaway
//! guests made from the lab guest's.

// Each includer uses a part.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// Bytes as text, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command to completion; panics if it cannot be started.
pub fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn must(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(out.status.success(), "{program} {args:?}: {}\n{}", text(&out.stderr), text(&out.stdout));
    text(&out.stdout)
}

/// `/lab/labguest.cfg` under the name `name`, with `extra` (whole lines) appended.
pub fn guest_config(name: &str, extra: &str) -> String {
    let base = std::fs::read_to_string("/lab/labguest.cfg").expect("/lab/labguest.cfg");
    let mut named = false;
    let mut cfg = String::new();
    for line in base.lines() {
        if line.split('=').next().unwrap_or("").trim() == "name" {
            cfg.push_str(&format!("name = \"{name}\"\n"));
            named = true;
        } else {
            cfg.push_str(line);
            cfg.push('\n');
        }
    }
    assert!(named, "/lab/labguest.cfg has no name line: {base}");
    cfg + extra
}

/// vCPU rows as both tools show them: (domid, vcpu) → (online, hard, soft), the maps in
/// xl's notation (`all` for every CPU id of the host).
pub type VcpuRows = std::collections::BTreeMap<(u32, u32), (bool, String, String)>;

/// `xl vcpu-list [DOMAIN...]` (every domain when `domains` is empty) as rows; an offline
/// vCPU has CPU `-` and a state with `p`.
pub fn xl_vcpu_rows(domains: &[&str]) -> VcpuRows {
    let mut args = vec!["vcpu-list"];
    args.extend_from_slice(domains);
    let out = must("xl", &args);
    let mut rows = VcpuRows::new();
    for line in out.lines().skip(1) {
        // Name ID VCPU CPU State Time(s) hard / soft
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 9, "xl vcpu-list line {line:?}");
        let online = f[3] != "-";
        assert!(online || f[4].contains('p'), "{line}");
        rows.insert((f[1].parse().unwrap(), f[2].parse().unwrap()), (online, f[6].to_string(), f[8].to_string()));
    }
    rows
}

/// `xenvcpu list [DOMAIN] --json` (the binary `bin`) as rows, on a host of `nr_cpus` CPU ids.
pub fn xenvcpu_vcpu_rows(bin: &str, domain: Option<&str>, nr_cpus: usize) -> VcpuRows {
    let mut args = vec!["list"];
    args.extend(domain);
    args.push("--json");
    let json: serde_json::Value = serde_json::from_str(&must(bin, &args)).unwrap();
    let all = format!("0-{}", nr_cpus - 1);
    let show = |v: &serde_json::Value| {
        let s = v.as_str().unwrap().to_string();
        if s == all {
            "all".to_string()
        } else {
            s
        }
    };
    json.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = (r["domid"].as_u64().unwrap() as u32, r["vcpu"].as_u64().unwrap() as u32);
            let online = !r["cpu"].is_null();
            assert_eq!(online, r["state"] != "offline", "{r}");
            (key, (online, show(&r["hard"]), show(&r["soft"])))
        })
        .collect()
}
