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
