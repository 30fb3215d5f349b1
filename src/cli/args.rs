//! The command line of `xenvcpu`: every subcommand and argument, with the limits that
//! are checked while parsing (before anything is read from or written to Xen).

use std::time::Duration;

use clap::{Parser, Subcommand};

/// The longest `--wait`: an hour. A guest that has not followed by then will not.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The most `--iterations` of `bench pin`: each update's latency is kept in memory.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Parses `--wait SECONDS`: a finite number of seconds from 0 to [`MAX_WAIT`].
fn parse_wait(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) {
        return Err(format!("{text} is out of range: give 0 to {} seconds", MAX_WAIT.as_secs()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The longest `--interval` of `agent`: a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// Parses `--interval SECONDS`: 0 (no periodic check) to [`MAX_INTERVAL`].
fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=MAX_INTERVAL.as_secs_f64()).contains(&secs) {
        return Err(format!(
            "{text} is out of range: give 0 (no periodic check) to {} seconds",
            MAX_INTERVAL.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Manage the virtual CPUs of Xen domains from dom0.
#[derive(Debug, Parser)]
#[command(name = "xenvcpu", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    /// The subcommand.
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Host CPUs: counts, sockets/cores/threads, NUMA nodes and per-CPU topology.
    Info {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// vCPUs of domains (all, or the ones named): CPU, state, time, hard/soft affinity and
    /// cpupool. `all` is a map of every host CPU, as xl prints it: the vCPU still runs only
    /// on the CPUs of its domain's pool.
    List {
        /// Domains by name or id (default: all).
        domains: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cpupools, as `xl cpupool-list -c` lists them (name and CPUs) with their id,
    /// scheduler and number of domains.
    Pools {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set the hard and/or soft affinity of vCPUs (xl vcpu-pin syntax; `-` keeps a map).
    Pin {
        /// Domain name or id.
        domain: String,
        /// A vCPU, a list of vCPUs (`0-2,5`) or `all` (applied as one operation).
        vcpus: String,
        /// Hard affinity as a cpu-list (`0-3,^2`, `all`, `node:1`), or `-` to keep it.
        hard: String,
        /// Soft affinity as a cpu-list, or `-` to keep it.
        soft: Option<String>,
        /// Replace a temporary pin override (XEN_VCPUAFFINITY_FORCE).
        #[arg(short, long)]
        force: bool,
    },
    /// Set how many vCPUs are online (`xl vcpu-set`): vCPUs 0..COUNT online, the rest off.
    Set {
        /// Domain name or id.
        domain: String,
        /// vCPUs to have online, 1 to the domain's maximum.
        count: u32,
        /// Allow more vCPUs online than the host has physical CPUs online (as xl's
        /// --ignore-host).
        #[arg(long)]
        ignore_host: bool,
        /// Wait up to this many seconds for the guest to follow, and fail if it does not.
        #[arg(long, value_name = "SECONDS", value_parser = parse_wait)]
        wait: Option<Duration>,
        /// A libvirt domain XML whose placement the vCPUs brought online get first (their
        /// `<vcpupin>`, else `<vcpu cpuset>`); it must be this domain's.
        #[arg(long, value_name = "FILE")]
        policy: Option<String>,
    },
    /// Bring chosen vCPUs online or take them offline (per-vCPU hotplug).
    State {
        /// Domain name or id.
        domain: String,
        /// vCPUs, as a list (`1,3`, `2-3`) or `all`.
        vcpus: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// Allow more vCPUs online than the host has physical CPUs online.
        #[arg(long)]
        ignore_host: bool,
        /// Wait up to this many seconds for the guest to follow, and fail if it does not.
        #[arg(long, value_name = "SECONDS", value_parser = parse_wait)]
        wait: Option<Duration>,
        /// A libvirt domain XML whose placement the vCPUs brought online get first (their
        /// `<vcpupin>`, else `<vcpu cpuset>`); it must be this domain's.
        #[arg(long, value_name = "FILE")]
        policy: Option<String>,
    },
    /// vCPU maps: possible, online (Xen), requested (xenstore), onlinable, offlinable.
    Maps {
        /// Domain name or id.
        domain: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Resolve a domain XML's placement (`<vcpu cpuset>`, `<vcpupin>`, `<emulatorpin>`) for this
    /// host and show it; with --commit, pin every vCPU (offline ones too, so they come up
    /// placed) and every thread of the emulator accordingly. The file must be for this
    /// domain: its `<vcpu>` count, and its `<name>` and `<uuid>` when it has them.
    Apply {
        /// Domain name or id.
        domain: String,
        /// A libvirt domain XML, or a fragment with `<vcpu>` and `<cputune>`.
        file: String,
        /// The advisory NUMA nodeset for placement='auto' (node ids, e.g. `0` or `0-1`).
        #[arg(long)]
        nodeset: Option<String>,
        /// Apply it (default: dry run).
        #[arg(long)]
        commit: bool,
        /// Apply a file whose `<name>` or `<uuid>` names another domain.
        #[arg(long)]
        force: bool,
    },
    /// Pin the domain's emulator (device model process in dom0) to CPUS.
    Emulatorpin {
        /// Domain name or id.
        domain: String,
        /// cpu-list.
        cpus: String,
    },
    /// The host's CPU as libvirt's capabilities XML: topology, the features Xen uses, and
    /// per guest type (PV, HVM) whether the CPU can be selected and the most it may have.
    Capabilities {
        /// Print JSON with the same facts.
        #[arg(long)]
        json: bool,
    },
    /// Keep every domain with a policy placed: new domains, hotplug by any tool, drift.
    ///
    /// Reads every `*.xml` of DIR (libvirt domain XML, as in /etc/libvirt/libxl), matches
    /// each to a running domain by `<uuid>` (which wins) or else `<name>`, pins every vCPU
    /// (offline ones too) and the emulator per `<vcpu cpuset>`, `<vcpupin>` and
    /// `<emulatorpin>`, then follows xenstore: introduced domains are placed, vCPUs that go
    /// offline lose their `<vcpupin>` (libvirt's rule), and every --interval drift is
    /// reported (repaired with --enforce). SIGHUP reloads DIR; SIGTERM or SIGINT stops.
    /// Lines go to stderr; with --json, one JSON object per event on stdout.
    Agent {
        /// The policy directory.
        #[arg(long, value_name = "DIR")]
        policy: std::path::PathBuf,
        /// Reconcile everything once and exit: 0 when nothing failed, 1 otherwise (a
        /// refused policy file counts).
        #[arg(long)]
        once: bool,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Repair drift found by the periodic check (default: report it).
        #[arg(long)]
        enforce: bool,
        /// Seconds between drift checks (0: none).
        #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_interval)]
        interval: Duration,
        /// One JSON object per event on stdout.
        #[arg(long)]
        json: bool,
        /// Where the pins dropped by hot-unplugs are kept across restarts.
        #[arg(long, value_name = "DIR", default_value = "/run/xenvcpu/agent")]
        state_dir: std::path::PathBuf,
    },
    /// CPU features: a guest's `<cpu>` as libxl's `cpuid=`, checked against the host, and
    /// CPU policies compared for migration.
    #[command(subcommand)]
    Cpu(CpuCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a shell completion script (generated from this command's definition).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, in roff (`xenvcpu man | man -l -`), of the command or of one
    /// subcommand.
    Man {
        /// A subcommand (default: the command itself).
        subcommand: Option<String>,
    },
}

/// The subcommands of `xenvcpu cpu`.
#[derive(Debug, Subcommand)]
pub enum CpuCommand {
    /// Print the xl.cfg `cpuid=` line of a domain XML's `<cpu>` (`--json`: also libxl's
    /// token list): `require`/`force` give `name=1`, `forbid`/`disable` `name=0`.
    Cpuid {
        /// A libvirt domain XML, or a `<cpu>` element.
        file: String,
        /// Print JSON: `{cpuid, libxl}`.
        #[arg(long)]
        json: bool,
    },
    /// Check a domain XML's `<cpu>` against this host (`require`: the host and the guest
    /// type's maximum must have it; `forbid`: the host must not), or with --domain against
    /// a running domain's policy (each feature: as requested, dropped by Xen, or present
    /// though forbidden). Exit 0 when it fits, 1 naming every feature at fault.
    Check {
        /// A libvirt domain XML, or a `<cpu>` element.
        file: String,
        /// The guest type whose maximum featureset applies.
        #[arg(long = "type", value_enum, default_value = "pv")]
        guest: super::cpu::GuestType,
        /// A running domain (name or id) to check instead of the host.
        #[arg(long)]
        domain: Option<String>,
        /// Print JSON (with --domain).
        #[arg(long)]
        json: bool,
    },
    /// Write the host's maximum CPU policy for a guest type, or a domain's policy, as JSON
    /// (what `compare` reads).
    Export {
        /// A domain (name or id) instead of the host.
        #[arg(long)]
        domain: Option<String>,
        /// The guest type whose maximum to export for the host.
        #[arg(long = "type", value_enum, default_value = "pv")]
        guest: super::cpu::GuestType,
    },
    /// Whether a domain with GUEST's CPU policy can run on a host with HOST's (both as
    /// written by `xenvcpu cpu export`; HOST is the host's maximum for the domain's type).
    /// Exit 0 when it can, 1 when it cannot (every reason is named).
    Compare {
        /// The domain's policy (JSON).
        guest: String,
        /// The destination host's policy (JSON).
        host: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The benchmarks of `xenvcpu bench`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Repeated affinity updates through the library: updates/s and p50/p99 latency.
    Pin {
        /// Domain name or id.
        domain: String,
        /// vCPUs to update in turn (default: all).
        #[arg(long)]
        vcpus: Option<String>,
        /// Number of updates (1 to 10000000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=MAX_ITERATIONS as i64))]
        iterations: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
