//! The `xenvcpu` command: list, pin, set and inspect the vCPUs of Xen domains from dom0, in
//! the style of `xl` and `virsh`. All logic lives in the library; this is parsing and
//! printing.
//!
//! Exit codes: 0 success; 1 the hypervisor or xenstore refused or failed; 2 usage error
//! (bad arguments, unknown domain, bad cpu-list, CPU or vCPU out of range); 3 no Xen here,
//! no libxenctrl, or not privileged.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Manage the virtual CPUs of Xen domains from dom0.
#[derive(Debug, Parser)]
#[command(name = "xenvcpu", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Host CPUs: counts, sockets/cores/threads, NUMA nodes and per-CPU topology.
    Info {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// vCPUs of domains (all, or the ones named): CPU, state, time, hard/soft affinity.
    List {
        /// Domains by name or id (default: all).
        domains: Vec<String>,
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
        /// Wait up to this many seconds for the guest to follow, and fail if it does not.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<f64>,
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
        /// Wait up to this many seconds for the guest to follow, and fail if it does not.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<f64>,
    },
    /// vCPU maps: possible, online (Xen), requested (xenstore), onlinable, offlinable.
    Maps {
        /// Domain name or id.
        domain: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Resolve a domain XML's placement (<vcpu cpuset>, <vcpupin>, <emulatorpin>) for this
    /// host and show it; with --commit, pin every online vCPU accordingly.
    Apply {
        /// Domain name or id.
        domain: String,
        /// A libvirt domain XML, or a fragment with <vcpu> and <cputune>.
        file: String,
        /// The advisory NUMA nodeset for placement='auto' (node ids, e.g. `0` or `0-1`).
        #[arg(long)]
        nodeset: Option<String>,
        /// Apply it (default: dry run).
        #[arg(long)]
        commit: bool,
    },
    /// Pin the domain's emulator (device model process in dom0) to CPUS.
    Emulatorpin {
        /// Domain name or id.
        domain: String,
        /// cpu-list.
        cpus: String,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Repeated affinity updates through the library: updates/s and p50/p99 latency.
    Pin {
        /// Domain name or id.
        domain: String,
        /// vCPUs to update in turn (default: all).
        #[arg(long)]
        vcpus: Option<String>,
        /// Number of updates.
        #[arg(long, default_value_t = 1000)]
        iterations: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Info { json } => cli::info(json),
        Command::List { domains, json } => cli::list(&domains, json),
        Command::Pin { domain, vcpus, hard, soft, force } => cli::pin(&domain, &vcpus, &hard, soft.as_deref(), force),
        Command::Set { domain, count, wait } => cli::set(&domain, count, wait),
        Command::State { domain, vcpus, state, wait } => cli::state(&domain, &vcpus, state == "on", wait),
        Command::Maps { domain, json } => cli::maps(&domain, json),
        Command::Apply { domain, file, nodeset, commit } => cli::apply(&domain, &file, nodeset.as_deref(), commit),
        Command::Emulatorpin { domain, cpus } => cli::emulatorpin(&domain, &cpus),
        Command::Bench(BenchCommand::Pin { domain, vcpus, iterations, json }) => {
            cli::bench_pin(&domain, vcpus.as_deref(), iterations, json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenvcpu: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
