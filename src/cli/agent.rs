//! `xenvcpu agent`: the library's [`Agent`] as a daemon, with signals, human lines on
//! stderr or JSON lines on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use super::{restore_handlers, set_handlers, CliResult};
use crate::agent::{Agent, Cause, Change, Control, EmulatorOutcome, Event, PolicyError};
use crate::placement::PlacementError;
use crate::{Error, Host};

/// The options of `xenvcpu agent` (see its help).
#[derive(Debug)]
pub(super) struct Options {
    pub once: bool,
    pub dry_run: bool,
    pub enforce: bool,
    pub interval: Duration,
    pub json: bool,
    pub state_dir: PathBuf,
}

/// The agent's control, reachable from the signal handlers.
static CONTROL: Control = Control::new();
/// The last stop signal caught (0: none).
static STOPPED_BY: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_stop(signal: libc::c_int) {
    // Atomic stores only: async-signal-safe.
    STOPPED_BY.store(signal as usize, Ordering::SeqCst);
    CONTROL.stop();
}

extern "C" fn on_hangup(_: libc::c_int) {
    CONTROL.reload();
}

pub(super) fn agent(host: &Host, dir: &Path, options: &Options) -> CliResult {
    let interval = (!options.interval.is_zero()).then_some(options.interval);
    let mut agent = Agent::new(host.clone(), interval);
    agent.set_dry_run(options.dry_run);
    agent.set_enforce(options.enforce);
    agent.set_state_dir(&options.state_dir);
    let loaded = agent.load_dir(dir)?;
    let out = Output { json: options.json };
    out.emit(&Event::Loaded {
        dir: loaded.dir.clone(),
        policies: loaded.policies.len(),
        problems: loaded.problems.len(),
    });

    if options.once {
        let summary = agent.reconcile_all(&mut |e| out.emit(&e))?;
        out.line(
            json!({"event": "summary", "domains": summary.domains, "failed": summary.failed,
                   "writes": summary.writes, "drift": summary.drift}),
            &format!(
                "done: {} domains, {} writes, {} drifting, {} failed",
                summary.domains, summary.writes, summary.drift, summary.failed
            ),
        );
        return if summary.failed == 0 { Ok(()) } else { Err(Error::AgentFailed { failed: summary.failed }.into()) };
    }

    STOPPED_BY.store(0, Ordering::SeqCst);
    let stops = set_handlers(&[libc::SIGTERM, libc::SIGINT], on_stop);
    let hangups = set_handlers(&[libc::SIGHUP], on_hangup);
    let result = agent.run(&CONTROL, |e| out.emit(&e));
    restore_handlers(&hangups);
    restore_handlers(&stops);
    result?;
    let signal = match STOPPED_BY.load(Ordering::SeqCst) as libc::c_int {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a stop",
    };
    out.line(json!({"event": "stopped", "signal": signal}), &format!("stopped by {signal}: watches removed"));
    Ok(())
}

/// Writes events: every one as a JSON line on stdout, or the telling ones as lines on
/// stderr.
struct Output {
    json: bool,
}

impl Output {
    fn emit(&self, event: &Event) {
        let quiet = match event {
            // An event-driven or periodic reconcile that found everything right.
            Event::Reconciled { cause: Cause::Periodic | Cause::Availability, report, .. } => {
                report.changed.is_empty() && report.drift.is_empty() && report.ok()
            }
            _ => false,
        };
        if self.json {
            self.line(event_json(event), "");
        } else if !quiet {
            self.line(Value::Null, &event.to_string());
        }
    }

    fn line(&self, value: Value, text: &str) {
        if self.json {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{value}");
            let _ = stdout.flush();
        } else {
            eprintln!("xenvcpu agent: {text}");
        }
    }
}

fn changes(list: &[Change]) -> Value {
    list.iter().map(|c| json!({"vcpu": c.vcpu.get(), "from": c.from.to_string(), "to": c.to.to_string()})).collect()
}

/// One event as a JSON object (`event` names its kind).
fn event_json(event: &Event) -> Value {
    match event {
        Event::Reconciled { cause, name, report } => {
            let emulator = match &report.emulator {
                EmulatorOutcome::NotChecked => json!({"state": "not_checked"}),
                EmulatorOutcome::None(reason) => json!({"state": "none", "reason": reason.to_string()}),
                EmulatorOutcome::Right { pid } => json!({"state": "right", "pid": pid}),
                EmulatorOutcome::Pinned { pid, to } => json!({"state": "pinned", "pid": pid, "to": to.to_string()}),
                EmulatorOutcome::Drift { pid, want } => json!({"state": "drift", "pid": pid, "want": want.to_string()}),
                EmulatorOutcome::Failed(e) => json!({"state": "failed", "error": e.to_string()}),
            };
            json!({
                "event": "reconciled", "cause": cause.as_str(), "domid": report.domid.get(), "name": name,
                "right": report.right.to_string(), "changed": changes(&report.changed),
                "drift": changes(&report.drift),
                "failed": report.failed.iter().map(|(v, e)| json!({"vcpu": v.get(), "error": e.to_string()})).collect::<Value>(),
                "emulator": emulator, "writes": report.writes(), "dry_run": report.dry_run, "ok": report.ok(),
                "took_us": u64::try_from(report.took.as_micros()).unwrap_or(u64::MAX),
            })
        }
        Event::Failed { cause, domid, name, error } => {
            json!({"event": "failed", "cause": cause.as_str(), "domid": domid.get(), "name": name, "error": error.to_string()})
        }
        Event::Unplugged { domid, name, vcpus, dropped } => json!({
            "event": "unplugged", "domid": domid.get(), "name": name, "vcpus": vcpus.to_string(),
            "dropped": dropped.to_string(),
        }),
        Event::Released { domid, name } => json!({"event": "released", "domid": domid.get(), "name": name}),
        Event::Warning { domid, message } => {
            json!({"event": "warning", "domid": domid.map(|d| d.get()), "message": message})
        }
        Event::Policy(problem) => {
            let mut value = json!({"event": "policy_refused", "error": problem.to_string()});
            if let PolicyError::Placement { source_name, error } = problem {
                value["file"] = json!(source_name);
                if let PlacementError::Xml { line, column, .. } = error {
                    value["line"] = json!(line);
                    value["column"] = json!(column);
                }
            }
            value
        }
        Event::Loaded { dir, policies, problems } => json!({
            "event": "loaded", "dir": dir.display().to_string(), "policies": policies, "problems": problems,
        }),
    }
}
