//! The `xenvcpu` command, as a library function so it can be driven in-process (tests run
//! it against the simulated platform): [`main`] for the binary, [`run`] for one argument
//! vector. Each subcommand opens the host, calls the library, prints. All logic lives in
//! the library; this is parsing and printing.
//!
//! Every argument is checked before anything is written or pinned. Exit codes:
//! [`EXIT_OK`], [`EXIT_FAILED`], [`EXIT_USAGE`], [`EXIT_ENVIRONMENT`],
//! [`EXIT_XENSTORE`]; errors are one line on stderr.

mod agent;
mod args;
mod cpu;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

pub use args::{Args, BenchCommand, Command, CpuCommand, MAX_INTERVAL, MAX_ITERATIONS, MAX_WAIT};
pub use cpu::GuestType;

use crate::agent::{Policy, PolicyError};
use crate::cpumap::CpuMap;
use crate::placement::LivePlacement;
use crate::sim::SimPlatform;
use crate::{
    AffinityRequest, AvailabilityChange, DomId, Domain, Effective, Error, Host, HostInfo, PhysCpu, VcpuId, VcpuInfo,
    VcpuMaps, VcpuSet, VcpuState,
};

/// Success.
pub const EXIT_OK: u8 = 0;
/// Xen or xenstore refused or failed (busy pin, no usable CPU, the guest did not follow,
/// the domain went away or was replaced).
pub const EXIT_FAILED: u8 = 1;
/// Usage: a bad argument, unknown domain, bad cpu-list, CPU beyond the host, vCPU or
/// count out of range, overcommit without `--ignore-host`. Nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// The environment: no Xen here, no (supported) libxenctrl, not privileged, or refused
/// by Xen's security policy.
pub const EXIT_ENVIRONMENT: u8 = 3;
/// xenstore is unreachable or does not answer (xenstored not running, stopped, wedged).
pub const EXIT_XENSTORE: u8 = 4;

/// How long a read-only command waits for each xenstore reply.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command that writes waits for each xenstore reply.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure of a command, with the exit code that classifies it.
#[derive(Debug)]
pub struct CliError {
    error: Error,
    /// What to do about it with this command, shown after the error in parentheses.
    hint: Option<String>,
}

impl<E: Into<Error>> From<E> for CliError {
    fn from(error: E) -> Self {
        CliError { error: error.into(), hint: None }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)?;
        match &self.hint {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

impl CliError {
    /// The library error behind it.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// What to do about it with the command that failed, if the command says.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    fn with_hint(mut self, hint: String) -> Self {
        self.hint = Some(hint);
        self
    }

    /// [`EXIT_USAGE`] for what the user can fix in the command line,
    /// [`EXIT_ENVIRONMENT`] and [`EXIT_XENSTORE`] for the environment, [`EXIT_FAILED`] for
    /// what the hypervisor or xenstore refused.
    pub fn exit_code(&self) -> u8 {
        exit_code(&self.error)
    }
}

fn exit_code(error: &Error) -> u8 {
    match error {
        Error::CpuList(_)
        | Error::CpusBeyondHost { .. }
        | Error::CpusNotInDom0 { .. }
        | Error::VcpuOutOfRange { .. }
        | Error::EmptyMap { .. }
        | Error::NoSuchDomain { .. }
        | Error::NoSuchDomainName { .. }
        | Error::InvalidArgument(_)
        | Error::MaxVcpusFixed { .. }
        | Error::VcpuCountOutOfRange { .. }
        | Error::Vcpu0Offline { .. }
        | Error::Overcommit { .. }
        | Error::PolicyForAnotherDomain { .. }
        | Error::GuestCpu(_)
        | Error::FeatureName(_)
        | Error::CpuPolicyFile { .. }
        | Error::Placement(_)
        | Error::NoEmulator { .. }
        | Error::NotDeviceModel { .. }
        | Error::EmptyProcessMap { .. }
        | Error::CpuMap(_) => EXIT_USAGE,
        Error::NoXen(_)
        | Error::LibraryNotFound(_)
        | Error::Permission(_)
        | Error::Denied { .. }
        | Error::VersionMismatch { .. } => EXIT_ENVIRONMENT,
        Error::XenStoreUnavailable { .. } => EXIT_XENSTORE,
        Error::XenStore(e) if e.is_unavailable() => EXIT_XENSTORE,
        Error::RolledBack { failed, .. } => match exit_code(failed) {
            EXIT_USAGE => EXIT_FAILED,
            code => code,
        },
        _ => EXIT_FAILED,
    }
}

type CliResult<T = ()> = Result<T, CliError>;

/// The `xenvcpu` binary: parses `std::env::args_os()`, runs on the real host (or the
/// simulated one with `XENVCPU_BACKEND=sim`), and returns the exit code.
pub fn main() -> ExitCode {
    // The library never prints: show its warnings (e.g. an environment override ignored in
    // a set-user-ID process). libxenctrl's errors come back inside the returned Error.
    crate::set_log_hook(Some(Box::new(|level, message| {
        if level == crate::LogLevel::Warn {
            eprintln!("xenvcpu: warning: {message}");
        }
    })));
    ExitCode::from(run(std::env::args_os(), None))
}

/// Runs one command line (`args[0]` is the program name) and returns its exit code, having
/// printed its output on stdout and any error as one line on stderr. With `platform`, the
/// command runs against that simulated platform; otherwise against the real host, or the
/// simulated one when `XENVCPU_BACKEND=sim`. Never panics on any input.
pub fn run<I, T>(args: I, platform: Option<&SimPlatform>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            if e.use_stderr() {
                eprint!("{}", e.render());
                return EXIT_USAGE;
            }
            print!("{}", e.render());
            return EXIT_OK;
        }
    };
    match dispatch(args.command, platform) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("xenvcpu: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(command: Command, platform: Option<&SimPlatform>) -> CliResult {
    // These need neither Xen nor xenstore.
    match &command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man { subcommand } => return man(subcommand.as_deref()),
        Command::Cpu(CpuCommand::Cpuid { file, json }) => return cpu::cpuid(file, *json),
        Command::Cpu(CpuCommand::Compare { guest, host, json }) => return cpu::compare_files(guest, host, *json),
        _ => {}
    }
    let owned;
    let backend = crate::secure_env_var("XENVCPU_BACKEND").map(|v| v.to_string_lossy().into_owned());
    let platform = match (platform, backend.as_deref()) {
        (Some(p), _) => Some(p),
        (None, Some("sim")) => {
            owned = SimPlatform::lab_like()?;
            Some(&owned)
        }
        (None, Some("xenctrl") | None) => None,
        (None, Some(other)) => {
            return Err(Error::InvalidArgument(format!("XENVCPU_BACKEND={other:?}: use xenctrl or sim")).into())
        }
    };
    let timeout = match command {
        Command::Set { .. }
        | Command::State { .. }
        | Command::Apply { .. }
        | Command::Emulatorpin { .. }
        | Command::Agent { .. } => WRITE_TIMEOUT,
        _ => READ_TIMEOUT,
    };
    let env = Env::open(platform, timeout)?;
    let result = match command {
        Command::Info { json } => info(&env, json),
        Command::List { domains, json } => list(&env, &domains, json),
        Command::Pools { json } => pools(&env, json),
        Command::Pin { domain, vcpus, hard, soft, force } => pin(&env, &domain, &vcpus, &hard, soft.as_deref(), force),
        Command::Set { domain, count, ignore_host, wait, policy } => {
            set(&env, &domain, count, ignore_host, wait, policy.as_deref())
        }
        Command::State { domain, vcpus, state, ignore_host, wait, policy } => {
            self::state(&env, &domain, &vcpus, state == "on", ignore_host, wait, policy.as_deref())
        }
        Command::Maps { domain, json } => maps(&env, &domain, json),
        Command::Apply { domain, file, nodeset, commit, force } => {
            apply(&env, &domain, &file, nodeset.as_deref(), commit, force)
        }
        Command::Emulatorpin { domain, cpus } => emulatorpin(&env, &domain, &cpus),
        Command::Capabilities { json } => cpu::capabilities(&env.host, json),
        Command::Cpu(CpuCommand::Check { file, guest, domain: None, .. }) => cpu::check(&env.host, &file, guest),
        Command::Cpu(CpuCommand::Check { file, domain: Some(domain), json, .. }) => {
            cpu::check_domain(&env.domain(&domain)?, &file, json)
        }
        Command::Cpu(CpuCommand::Export { domain, guest }) => {
            let dom = domain.map(|d| env.domain(&d)).transpose()?;
            cpu::export(&env.host, dom.as_ref(), guest)
        }
        Command::Agent { policy, once, dry_run, enforce, interval, json, state_dir } => {
            let options = agent::Options { once, dry_run, enforce, interval, json, state_dir };
            agent::agent(&env.host, &policy, &options)
        }
        Command::Bench(BenchCommand::Pin { domain, vcpus, iterations, json }) => {
            bench_pin(&env, &domain, vcpus.as_deref(), iterations, json)
        }
        Command::Completions { .. }
        | Command::Man { .. }
        | Command::Cpu(CpuCommand::Cpuid { .. } | CpuCommand::Compare { .. }) => unreachable!("handled above"),
    };
    result.map_err(|e| env.classify(e))
}

/// `xenvcpu completions SHELL`: the completion script, from the clap definition.
fn completions(shell: clap_complete::Shell) -> CliResult {
    let mut cmd = <Args as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "xenvcpu", &mut std::io::stdout());
    Ok(())
}

/// `xenvcpu man [SUBCOMMAND]`: the man page in roff, from the clap definition.
fn man(subcommand: Option<&str>) -> CliResult {
    let top = <Args as clap::CommandFactory>::command();
    let cmd = match subcommand {
        None => top,
        Some(name) => {
            let names: Vec<String> = top.get_subcommands().map(|c| c.get_name().to_string()).collect();
            let sub = top.find_subcommand(name).cloned().ok_or_else(|| {
                Error::InvalidArgument(format!("no subcommand {name:?}: one of {}", names.join(", ")))
            })?;
            sub.display_name(format!("xenvcpu-{name}")).version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Error::InvalidArgument(format!("rendering the man page: {e}")))?;
    use std::io::Write;
    std::io::stdout().write_all(&page).map_err(|e| Error::InvalidArgument(format!("writing the man page: {e}")))?;
    Ok(())
}

/// What a command works with: the host (with its xenstore, opened on first use) and the
/// domain names already read.
struct Env {
    host: Host,
    /// Names read so far, by domid (`None`: the domain has no name).
    names: std::cell::RefCell<HashMap<DomId, Option<String>>>,
    /// Cpupool names read so far, by pool id (the id when it has none).
    pool_names: std::cell::RefCell<HashMap<u32, String>>,
    /// Set once xenstore failed to answer: later lookups are not tried again.
    store_down: std::cell::Cell<bool>,
}

impl Env {
    /// The given simulated platform, or the real hypervisor with `timeout` for connecting
    /// to xenstore and for every reply.
    fn open(platform: Option<&SimPlatform>, timeout: Duration) -> CliResult<Env> {
        let host = match platform {
            Some(sim) => sim.host.clone(),
            None => {
                let host = Host::open()?;
                host.set_store_timeout(timeout);
                host
            }
        };
        Ok(Env::new(host))
    }

    fn new(host: Host) -> Env {
        Env { host, names: Default::default(), pool_names: Default::default(), store_down: Default::default() }
    }

    /// Turns a failure that says xenstore is unreachable or silent into
    /// [`Error::XenStoreUnavailable`] naming the endpoint.
    fn classify(&self, e: CliError) -> CliError {
        match e.error {
            Error::XenStore(xs) => self.host.store_error(xs).into(),
            error => CliError { error, hint: e.hint },
        }
    }

    /// A domain's name from xenstore, read once per domain (`Domain-0` for dom0 when
    /// xenstore does not answer). After xenstore failed to answer once, no more lookups
    /// are made: the caller shows ids instead.
    fn name_of(&self, domid: DomId) -> Option<String> {
        if let Some(name) = self.names.borrow().get(&domid) {
            return name.clone();
        }
        let name = self.read_name("domain", || self.host.domain_name(domid));
        let name = name.or_else(|| (domid == DomId::DOM0).then(|| "Domain-0".to_string()));
        self.names.borrow_mut().insert(domid, name.clone());
        name
    }

    /// A name `read` from xenstore (`what`: whose names, for the warning), or `None`. Once
    /// xenstore did not answer, says so once and reads nothing more: names become ids.
    fn read_name(&self, what: &str, read: impl FnOnce() -> Result<Option<String>, Error>) -> Option<String> {
        if self.store_down.get() {
            return None;
        }
        match read() {
            Ok(name) => name,
            Err(e @ Error::XenStoreUnavailable { .. }) => {
                self.store_down.set(true);
                eprintln!("xenvcpu: warning: {what} names unavailable, showing ids: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// A cpupool's name from xenstore (`/local/pool/<id>/name`), read once per pool; its id
    /// when it has none or xenstore does not answer (as for domain names).
    fn pool_name_of(&self, pool: u32) -> String {
        if let Some(name) = self.pool_names.borrow().get(&pool) {
            return name.clone();
        }
        let name = self.read_name("cpupool", || self.host.pool_name(pool)).unwrap_or_else(|| pool.to_string());
        self.pool_names.borrow_mut().insert(pool, name.clone());
        name
    }

    /// A domain by id or name (names through xenstore, as xl does).
    fn domain(&self, spec: &str) -> CliResult<Domain> {
        let id = match spec.parse::<DomId>() {
            Ok(id) => id,
            Err(_) if spec == "Domain-0" => DomId::DOM0,
            Err(_) => self.host.domain_id(spec)?,
        };
        Ok(self.host.domain(id)?)
    }
}

fn map_text(map: &CpuMap, nr_cpus: usize) -> String {
    if *map == CpuMap::all(nr_cpus) {
        "all".into()
    } else if map.is_empty() {
        "none".into()
    } else {
        map.to_string()
    }
}

fn state_word(state: VcpuState) -> &'static str {
    match state {
        VcpuState::Offline => "offline",
        VcpuState::Running => "running",
        VcpuState::Blocked => "blocked",
        VcpuState::Runnable => "runnable",
    }
}

fn print_json<T: Serialize>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidArgument(format!("JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

// ---- info ------------------------------------------------------------------------------

#[derive(Serialize)]
struct InfoJson {
    nr_cpus_online: u32,
    max_cpu_id: u32,
    nr_cpu_ids: usize,
    sockets: usize,
    cores_per_socket: u32,
    threads_per_core: u32,
    nr_nodes: u32,
    cpu_khz: u32,
    cpus: Vec<CpuJson>,
}

#[derive(Serialize)]
struct CpuJson {
    cpu: usize,
    online: bool,
    core: Option<u32>,
    socket: Option<u32>,
    node: Option<u32>,
}

/// `xenvcpu info`.
fn info(env: &Env, json: bool) -> CliResult {
    let host = &env.host;
    let info: HostInfo = host.info()?;
    let p = &info.phys;
    if json {
        return print_json(&InfoJson {
            nr_cpus_online: p.nr_cpus,
            max_cpu_id: p.max_cpu_id,
            nr_cpu_ids: info.nr_cpus(),
            sockets: info.nr_sockets(),
            cores_per_socket: p.cores_per_socket,
            threads_per_core: p.threads_per_core,
            nr_nodes: p.nr_nodes,
            cpu_khz: p.cpu_khz,
            cpus: info
                .cpus
                .iter()
                .enumerate()
                .map(|(cpu, t)| CpuJson {
                    cpu,
                    online: info.online.contains(cpu),
                    core: t.core,
                    socket: t.socket,
                    node: t.node,
                })
                .collect(),
        });
    }
    println!("CPUs online       : {} of {} (max CPU id {})", p.nr_cpus, info.nr_cpus(), p.max_cpu_id);
    println!("online CPU list   : {}", info.online_cpus());
    println!("sockets           : {}", info.nr_sockets());
    println!("cores per socket  : {}", p.cores_per_socket);
    println!("threads per core  : {}", p.threads_per_core);
    println!("NUMA nodes        : {}", p.nr_nodes);
    println!("CPU frequency     : {} MHz", p.cpu_khz / 1000);
    println!("cpu_topology      :");
    println!("{:>5} {:>6} {:>6} {:>6}  state", "cpu", "core", "socket", "node");
    let show = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    for (cpu, t) in info.cpus.iter().enumerate() {
        // Online or not from the cpupools (free or in a pool). An offline CPU shows what Xen
        // still reports: its node, and no core or socket (`-`) unless the host parks
        // offline CPUs (Intel), which keeps them.
        let state = if info.online.contains(cpu) { "online" } else { "offline" };
        println!("{cpu:>5} {:>6} {:>6} {:>6}  {state}", show(t.core), show(t.socket), show(t.node));
    }
    Ok(())
}

// ---- list ------------------------------------------------------------------------------

#[derive(Serialize)]
struct VcpuJson {
    domain: Option<String>,
    domid: u32,
    /// The domain's cpupool, by name (its id when xenstore has no name).
    pool: String,
    poolid: u32,
    vcpu: u32,
    cpu: Option<u32>,
    state: &'static str,
    time_ns: u64,
    hard: String,
    soft: String,
}

/// `xenvcpu list [DOMAIN...]`. Without domains, every domain; one destroyed while the
/// list is made is skipped with a note on stderr, as `xl vcpu-list` does.
fn list(env: &Env, domains: &[String], json: bool) -> CliResult {
    let host = &env.host;
    let doms: Vec<Domain> = if domains.is_empty() {
        let mut doms = Vec::new();
        for info in host.domains()?.into_iter().filter(|d| d.max_vcpu_id.is_some()) {
            match host.domain(info.domid) {
                Ok(dom) => doms.push(dom),
                Err(Error::NoSuchDomain { .. } | Error::NoVcpus { .. }) => vanished(info.domid),
                Err(e) => return Err(e.into()),
            }
        }
        doms
    } else {
        domains.iter().map(|d| env.domain(d)).collect::<CliResult<_>>()?
    };
    let mut rows = Vec::new();
    for dom in doms {
        let vcpus = match dom.vcpus() {
            Ok(vcpus) => vcpus,
            Err(Error::DomainGone { domid, .. }) if domains.is_empty() => {
                vanished(domid);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let name = env.name_of(dom.id());
        // The pool now (the vCPUs were just read; the handle's info may be older).
        let pool = match dom.refresh() {
            Ok(info) => info.cpupool,
            Err(Error::NoSuchDomain { domid }) if domains.is_empty() => {
                vanished(domid);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        rows.extend(vcpus.into_iter().map(|v| (name.clone(), dom.id(), pool, v)));
    }
    let nr_cpus = host.nr_cpus();
    if json {
        let out: Vec<VcpuJson> = rows
            .into_iter()
            .map(|(domain, domid, pool, v)| VcpuJson {
                domain,
                domid: domid.get(),
                pool: env.pool_name_of(pool),
                poolid: pool,
                vcpu: v.vcpu.get(),
                cpu: v.cpu.map(PhysCpu::get),
                state: state_word(v.state),
                time_ns: v.cpu_time_ns,
                hard: v.hard.to_string(),
                soft: v.soft.to_string(),
            })
            .collect();
        return print_json(&out);
    }
    println!(
        "{:<24} {:>5} {:>5} {:>4} {:<8} {:>9} {:<12}  Affinity (Hard / Soft)",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Pool"
    );
    for (name, id, pool, v) in rows {
        let cpu = v.cpu.map_or("-".to_string(), |c| c.to_string());
        println!(
            "{:<24} {:>5} {:>5} {:>4} {:<8} {:>9.1} {:<12}  {} / {}",
            name.unwrap_or_else(|| id.to_string()),
            id,
            v.vcpu,
            cpu,
            state_word(v.state),
            v.cpu_time_ns as f64 / 1e9,
            env.pool_name_of(pool),
            map_text(&v.hard, nr_cpus),
            map_text(&v.soft, nr_cpus)
        );
    }
    Ok(())
}

// ---- pools -----------------------------------------------------------------------------

#[derive(Serialize)]
struct PoolJson {
    name: String,
    id: u32,
    scheduler: String,
    cpus: String,
    nr_cpus: usize,
    domains: u32,
}

/// `xenvcpu pools`: `xl cpupool-list -c`'s name and CPU list, with the id, scheduler and
/// domain count `xl cpupool-list` shows without `-c`.
fn pools(env: &Env, json: bool) -> CliResult {
    let pools = env.host.pools()?;
    let rows: Vec<PoolJson> = pools
        .into_iter()
        .map(|p| PoolJson {
            name: env.pool_name_of(p.id),
            id: p.id,
            scheduler: p.scheduler.to_string(),
            cpus: p.cpus.to_string(),
            nr_cpus: p.cpus.count(),
            domains: p.domains,
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    println!("{:<19}{:<20}{:>4}  {:<10} {:>7}", "Name", "CPU list", "ID", "Sched", "Domains");
    for p in rows {
        println!("{:<19}{:<20}{:>4}  {:<10} {:>7}", p.name, p.cpus, p.id, p.scheduler, p.domains);
    }
    Ok(())
}

/// Notes on stderr that a domain was destroyed while the list was made.
fn vanished(domid: DomId) {
    eprintln!("xenvcpu: domain {domid} went away while listing: skipped");
}

// ---- pin -------------------------------------------------------------------------------

/// Parses a vCPU argument: `all`, or a cpu-list of vCPU numbers (the library checks that
/// the domain has them).
fn parse_vcpus(dom: &Domain, spec: &str) -> CliResult<VcpuSet> {
    let vcpus = if spec == "all" { dom.all_vcpus() } else { spec.parse::<VcpuSet>()? };
    if vcpus.is_empty() {
        return Err(Error::InvalidArgument("no vCPU given".into()).into());
    }
    Ok(vcpus)
}

/// Parses an affinity argument: `-` (keep) or a cpu-list resolved against the host.
fn parse_map(host: &Host, nodes: &[CpuMap], spec: Option<&str>) -> CliResult<Option<CpuMap>> {
    match spec {
        None | Some("-") => Ok(None),
        Some(list) => Ok(Some(host.cpu_list_context(nodes).parse(list)?)),
    }
}

/// `xenvcpu pin DOMAIN VCPU|all HARD|- [SOFT|-] [--force]`.
fn pin(env: &Env, domain: &str, vcpus: &str, hard: &str, soft: Option<&str>, force: bool) -> CliResult {
    let host = &env.host;
    let dom = env.domain(domain)?;
    let vcpus = parse_vcpus(&dom, vcpus)?;
    let nodes = host.info()?.node_cpus();
    let (hard, soft) = (parse_map(host, &nodes, Some(hard))?, parse_map(host, &nodes, soft)?);
    let req = AffinityRequest { hard: hard.as_ref(), soft: soft.as_ref(), force };
    let done = dom.pin(&vcpus, &req)?;
    for (vcpu, eff) in &done {
        report_effective(&dom, *vcpu, &req, eff, host.nr_cpus());
    }
    Ok(())
}

/// Prints the effective maps, and on stderr the CPUs Xen dropped with the reason: outside
/// the domain's cpupool, offline, or (soft) outside the hard map. The reasons cost two reads
/// (the pool and the host's online CPUs), made only when something was dropped.
fn report_effective(dom: &Domain, vcpu: VcpuId, req: &AffinityRequest<'_>, eff: &Effective, nr_cpus: usize) {
    let show = |m: &Option<CpuMap>| m.as_ref().map_or("(unchanged)".to_string(), |m| map_text(m, nr_cpus));
    println!("domain {} vCPU {vcpu}: hard {} / soft {}", dom.id(), show(&eff.hard), show(&eff.soft));
    let (hard_lost, soft_lost) = eff.dropped(req);
    if hard_lost.is_empty() && soft_lost.is_empty() {
        return;
    }
    let why = match (dom.pool(), dom.host().info()) {
        (Ok(pool), Ok(info)) => Some((eff.dropped_why(req, &pool.cpus, &info.online_cpus()), pool.id)),
        _ => None,
    };
    for (kind, lost, dropped) in [
        ("hard", &hard_lost, why.as_ref().map(|((h, _), _)| h)),
        ("soft", &soft_lost, why.as_ref().map(|((_, s), _)| s)),
    ] {
        if lost.is_empty() {
            continue;
        }
        let reasons = match (dropped, why.as_ref()) {
            (Some(d), Some((_, pool))) => {
                let mut parts = Vec::new();
                if !d.outside_pool.is_empty() {
                    parts.push(format!("{} outside the domain's cpupool {pool}", d.outside_pool));
                }
                if !d.offline.is_empty() {
                    parts.push(format!("{} offline", d.offline));
                }
                if !d.outside_hard.is_empty() {
                    parts.push(format!("{} outside the hard affinity", d.outside_hard));
                }
                parts.join("; ")
            }
            _ => "offline or outside the domain's cpupool".into(),
        };
        eprintln!("xenvcpu: warning: Xen dropped CPUs {lost} from the {kind} affinity of vCPU {vcpu} ({reasons})");
    }
}

// ---- bench pin -------------------------------------------------------------------------

#[derive(Serialize)]
struct BenchJson {
    domid: u32,
    vcpus: String,
    iterations: u32,
    updates_per_sec: f64,
    p50_ns: u64,
    p99_ns: u64,
    mean_ns: u64,
}

/// The signal that interrupted a benchmark (0: none).
static SIGNALLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(signal as usize, Ordering::SeqCst);
}

/// SIGINT and SIGTERM caught (instead of killing the process) while it lives, so that a
/// benchmark can restore what it changed; the previous dispositions come back on drop.
struct CatchSignals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl CatchSignals {
    fn install() -> CatchSignals {
        SIGNALLED.store(0, Ordering::SeqCst);
        CatchSignals { previous: set_handlers(&[libc::SIGINT, libc::SIGTERM], on_signal) }
    }

    /// The signal caught so far, by name.
    fn caught(&self) -> Option<&'static str> {
        match SIGNALLED.load(Ordering::SeqCst) as libc::c_int {
            0 => None,
            libc::SIGINT => Some("SIGINT"),
            _ => Some("SIGTERM"),
        }
    }
}

impl Drop for CatchSignals {
    fn drop(&mut self) {
        restore_handlers(&self.previous);
    }
}

/// Sets `handler` as the action of each of `signals`; returns the previous actions (of
/// those set) for [`restore_handlers`].
fn set_handlers(signals: &[libc::c_int], handler: extern "C" fn(libc::c_int)) -> Vec<(libc::c_int, libc::sigaction)> {
    let mut previous = Vec::new();
    for &signal in signals {
        // SAFETY: both structs are plain C data, zero-initialised (a valid empty mask and
        // no flags); `handler` has the `void (*)(int)` signature sa_sigaction takes
        // without SA_SIGINFO (every handler given here only stores to an atomic); `old`
        // is written by the kernel on success and only used then.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as libc::sighandler_t;
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &action, &mut old) == 0 {
                previous.push((signal, old));
            }
        }
    }
    previous
}

/// Puts back the actions [`set_handlers`] returned.
fn restore_handlers(previous: &[(libc::c_int, libc::sigaction)]) {
    for (signal, old) in previous {
        // SAFETY: `old` is the action the kernel returned for this signal, restored as it
        // was; a null old-action pointer is allowed.
        unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
    }
}

/// `xenvcpu bench pin DOMAIN [--vcpus LIST] [--iterations N]`: alternates each vCPU's hard
/// affinity between all CPUs and a single CPU, through the library's allocation-free path.
/// Every vCPU it touched gets its previous affinity back: after success, on error, and on
/// SIGINT or SIGTERM. The domain's identity is checked before every update (outside the
/// timed call), so a domain replaced under the same id is never written to; updates/s is
/// computed from the timed updates alone.
fn bench_pin(env: &Env, domain: &str, vcpus: Option<&str>, iterations: u32, json: bool) -> CliResult {
    let host = &env.host;
    let dom = env.domain(domain)?;
    let vcpus = parse_vcpus(&dom, vcpus.unwrap_or("all"))?;
    let order: Vec<VcpuId> = vcpus.iter().collect();
    let saved: Vec<VcpuInfo> = order.iter().map(|&v| dom.vcpu_info(v)).collect::<Result<_, _>>()?;
    let maps = [CpuMap::all(host.nr_cpus()), CpuMap::from_iter([0])];
    let mut eff = Effective { hard: Some(CpuMap::with_capacity(host.nr_cpus())), soft: None };
    let mut times = Vec::with_capacity(iterations as usize);
    let signals = CatchSignals::install();
    let mut outcome = Ok(());
    for i in 0..iterations as usize {
        if signals.caught().is_some() {
            break;
        }
        if let Err(e) = dom.ensure_same("a benchmark update") {
            outcome = Err(e);
            break;
        }
        let req = AffinityRequest::hard(&maps[(i / order.len()) % 2]);
        let t = Instant::now();
        let result = dom.set_affinity_into(order[i % order.len()], &req, &mut eff);
        times.push(t.elapsed().as_nanos() as u64);
        if let Err(e) = result {
            outcome = Err(e);
            break;
        }
    }
    // Every vCPU written at least once (the first len() updates visit each in turn).
    let touched = &saved[..times.len().min(saved.len())];
    let (restored, restore_failures) = dom.restore_affinity(touched);
    if let Some(signal) = signals.caught() {
        return Err(Error::Interrupted { signal, restored, restore_failures }.into());
    }
    drop(signals);
    if let Err(failed) = outcome {
        return Err(Error::RolledBack { failed: Box::new(failed), restored, restore_failures }.into());
    }
    if !restore_failures.is_empty() {
        return Err(Error::RestoreFailed { restored, restore_failures }.into());
    }
    let total = Duration::from_nanos(times.iter().sum());
    times.sort_unstable();
    let pct = |p: usize| times[(times.len() - 1) * p / 100];
    let result = BenchJson {
        domid: dom.id().get(),
        vcpus: vcpus.to_string(),
        iterations,
        updates_per_sec: f64::from(iterations) / total.as_secs_f64().max(1e-9),
        p50_ns: pct(50),
        p99_ns: pct(99),
        mean_ns: times.iter().sum::<u64>() / times.len() as u64,
    };
    if json {
        return print_json(&result);
    }
    println!(
        "domain {} vCPUs {}: {} updates in {:.3} s: {:.0} updates/s, latency p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs",
        result.domid,
        result.vcpus,
        iterations,
        total.as_secs_f64(),
        result.updates_per_sec,
        result.p50_ns as f64 / 1e3,
        result.p99_ns as f64 / 1e3,
        result.mean_ns as f64 / 1e3
    );
    if result.p50_ns == 0 {
        // Seen in a PV dom0 without a stable TSC: Linux holds Xen's clock still rather than
        // let it run backwards across vCPUs, so most single updates read as 0 ns.
        eprintln!(
            "xenvcpu: note: the clock stood still across most updates; the latencies are below what it resolves here"
        );
    }
    Ok(())
}

// ---- set, state, maps ------------------------------------------------------------------

fn report_change(dom: &Domain, change: &AvailabilityChange, wait: Option<Duration>) -> CliResult {
    let before = change.before.as_ref().map_or("(no availability nodes)".to_string(), ToString::to_string);
    if change.written {
        println!("domain {}: vCPUs {} requested online (before: {before})", dom.id(), change.after);
    } else {
        println!("domain {}: vCPUs {} already requested online: nothing to change", dom.id(), change.after);
    }
    if let Some(timeout) = wait {
        let start = Instant::now();
        dom.wait_for_vcpus(&change.after, timeout)?;
        println!("domain {}: the guest followed in {} ms", dom.id(), start.elapsed().as_millis());
    }
    Ok(())
}

/// Refuses to have more vCPUs online than the host has physical CPUs online, as
/// `xl vcpu-set` does, unless `ignore_host`.
fn check_overcommit(env: &Env, dom: &Domain, online: usize, ignore_host: bool) -> CliResult {
    let host_cpus = env.host.info()?.phys.nr_cpus;
    if !ignore_host && online > host_cpus as usize {
        return Err(Error::Overcommit { domid: dom.id(), requested: online as u32, host_cpus }.into());
    }
    Ok(())
}

/// `xenvcpu set DOMAIN COUNT [--ignore-host] [--wait SECONDS]`.
fn set(
    env: &Env,
    domain: &str,
    count: u32,
    ignore_host: bool,
    wait: Option<Duration>,
    policy: Option<&str>,
) -> CliResult {
    let dom = env.domain(domain)?;
    dom.check_count(count)?;
    check_overcommit(env, &dom, count as usize, ignore_host)?;
    let change = match policy {
        None => dom.set_vcpu_count(count)?,
        Some(file) => {
            let (mut live, info, nodes) = live_policy(env, &dom, file, PolicyUse::Hotplug { command: "set", domain })?;
            dom.set_vcpu_count_placed(count, &mut live, &info, nodes.as_ref())?
        }
    };
    report_change(&dom, &change, wait)
}

/// `xenvcpu state DOMAIN VCPUS on|off [--ignore-host] [--wait SECONDS] [--policy FILE]`.
fn state(
    env: &Env,
    domain: &str,
    vcpus: &str,
    on: bool,
    ignore_host: bool,
    wait: Option<Duration>,
    policy: Option<&str>,
) -> CliResult {
    let dom = env.domain(domain)?;
    let vcpus = parse_vcpus(&dom, vcpus)?;
    dom.check_state_change(&vcpus, on)?;
    if on {
        let now = match dom.requested_vcpus()? {
            Some(requested) => requested,
            None => dom.online_vcpus()?,
        };
        check_overcommit(env, &dom, now.union(&vcpus).count(), ignore_host)?;
    }
    let change = match policy {
        None => dom.set_vcpus_online(&vcpus, on)?,
        Some(file) => {
            let (mut live, info, nodes) =
                live_policy(env, &dom, file, PolicyUse::Hotplug { command: "state", domain })?;
            dom.set_vcpus_online_placed(&vcpus, on, &mut live, &info, nodes.as_ref())?
        }
    };
    report_change(&dom, &change, wait)
}

/// The command that reads a policy file for one domain: it decides whether the file may
/// name another domain, and what to tell the user when it does.
#[derive(Debug, Clone, Copy)]
enum PolicyUse<'a> {
    /// `apply`, which takes the file anyway with `--force`.
    Apply {
        /// `--force` was given.
        force: bool,
    },
    /// `set` or `state` with `--policy`, which have no `--force`.
    Hotplug {
        /// The subcommand, as typed.
        command: &'static str,
        /// The domain, as typed.
        domain: &'a str,
    },
}

impl PolicyUse<'_> {
    /// What to do about a file of another domain (after "nothing was applied to ...").
    fn hint(self, file: &str) -> String {
        match self {
            PolicyUse::Apply { .. } => "apply it anyway with --force".into(),
            PolicyUse::Hotplug { command, domain } => format!(
                "{command} has no --force: correct the file's <name> or <uuid>, or pin by it anyway with \
                 `xenvcpu apply {domain} {file} --commit --force` and run {command} without --policy"
            ),
        }
    }
}

/// A policy file for `dom`, read and checked: its `<name>` and `<uuid>` (unless `apply`
/// was forced) and its vCPU count.
fn read_policy(env: &Env, dom: &Domain, file: &str, usage: PolicyUse<'_>) -> CliResult<Policy> {
    let policy = Policy::from_file(std::path::Path::new(file)).map_err(|e| match e {
        PolicyError::Placement { error, .. } => Error::Placement(error),
        other => Error::InvalidArgument(other.to_string()),
    })?;
    let name = env.name_of(dom.id());
    if !matches!(usage, PolicyUse::Apply { force: true }) {
        let shown = name.clone().unwrap_or_else(|| format!("domain {}", dom.id()));
        policy
            .check_for(&shown, name.as_deref(), crate::Uuid(dom.info().uuid))
            .map_err(|e| CliError::from(e).with_hint(usage.hint(file)))?;
    }
    if policy.placement.max_vcpus != dom.max_vcpus() {
        return Err(Error::InvalidArgument(format!(
            "{file} is for {} vCPUs (<vcpu>{}</vcpu>); domain {} has {}: a policy must fit its domain",
            policy.placement.max_vcpus,
            policy.placement.max_vcpus,
            dom.id(),
            dom.max_vcpus()
        ))
        .into());
    }
    Ok(policy)
}

/// The live placement of `dom` under the policy in `file`, with the vCPUs online now, and
/// the advisory nodeset when the policy is `placement='auto'`.
fn live_policy(
    env: &Env,
    dom: &Domain,
    file: &str,
    usage: PolicyUse<'_>,
) -> CliResult<(LivePlacement, HostInfo, Option<CpuMap>)> {
    let policy = read_policy(env, dom, file, usage)?;
    let online = match dom.requested_vcpus()? {
        Some(requested) => requested,
        None => dom.online_vcpus()?,
    };
    let nodes = advisory_nodes(dom, &policy.placement)?;
    Ok((LivePlacement::with_online(policy.placement, &online)?, env.host.info()?, nodes))
}

/// For `placement='auto'`, the domain's advisory nodeset (its node affinity), with a
/// warning on stderr when that is every node.
fn advisory_nodes(dom: &Domain, placement: &crate::placement::Placement) -> CliResult<Option<CpuMap>> {
    if placement.mode != crate::placement::PlacementMode::Auto {
        return Ok(None);
    }
    let advisory = dom.advisory_nodeset()?;
    if let Some(warning) = advisory.warning() {
        eprintln!("xenvcpu: warning: domain {}: {warning}", dom.id());
    }
    Ok(Some(advisory.into_nodes()))
}

#[derive(Serialize)]
struct MapsJson {
    domid: u32,
    possible: String,
    online: String,
    requested: Option<String>,
    onlinable: String,
    offlinable: String,
}

/// `xenvcpu maps DOMAIN [--json]`.
fn maps(env: &Env, domain: &str, json: bool) -> CliResult {
    let dom = env.domain(domain)?;
    let m: VcpuMaps = dom.vcpu_maps()?;
    let out = MapsJson {
        domid: dom.id().get(),
        possible: m.possible.to_string(),
        online: m.online.to_string(),
        requested: m.requested.as_ref().map(ToString::to_string),
        onlinable: m.onlinable.to_string(),
        offlinable: m.offlinable.to_string(),
    };
    if json {
        return print_json(&out);
    }
    let show = |s: &str| if s.is_empty() { "none".to_string() } else { s.to_string() };
    println!("possible   : {}", show(&out.possible));
    println!("online     : {}", show(&out.online));
    println!("requested  : {}", out.requested.as_deref().map_or("- (no availability nodes)".into(), show));
    println!("onlinable  : {}", show(&out.onlinable));
    println!("offlinable : {}", show(&out.offlinable));
    Ok(())
}

// ---- apply, emulatorpin ----------------------------------------------------------------

/// `xenvcpu apply DOMAIN FILE.xml [--nodeset NODES] [--commit]`: resolves the placement of a
/// domain XML (`<vcpu>`, `<cputune>`) for this host and shows it; `--commit` pins
/// every vCPU (offline ones too) and the emulator accordingly. `placement='auto'` without
/// `--nodeset` uses the domain's advisory nodeset (its node affinity).
fn apply(env: &Env, domain: &str, file: &str, nodeset: Option<&str>, commit: bool, force: bool) -> CliResult {
    let dom = env.domain(domain)?;
    let placement = read_policy(env, &dom, file, PolicyUse::Apply { force })?.placement;
    let info = env.host.info()?;
    let nodeset = match nodeset {
        Some(list) => Some(list.parse::<CpuMap>()?),
        // placement='auto' without --nodeset: the domain's own NUMA node affinity.
        None => advisory_nodes(&dom, &placement)?,
    };
    let resolved = placement.resolve(&info, nodeset.as_ref())?;
    print!("{}", resolved.table());
    if !commit {
        println!("(dry run: nothing applied; --commit pins every vCPU, offline ones too, and the emulator)");
        return Ok(());
    }
    // Every vCPU, as one operation (a failure restores those already changed): offline
    // ones too, so that they come up placed whoever brings them online.
    let items: Vec<(VcpuId, AffinityRequest<'_>)> =
        resolved.vcpus.iter().map(|p| (p.vcpu, AffinityRequest::hard(&p.cpus))).collect();
    for (vcpu, eff) in dom.pin_each(&items)? {
        let req_map = &resolved.vcpus[vcpu.index()].cpus;
        report_effective(&dom, vcpu, &AffinityRequest::hard(req_map), &eff, env.host.nr_cpus());
    }
    match dom.pin_emulator(&resolved.emulator.0) {
        Ok((pid, map)) => println!("emulator: process {pid}, every thread pinned to {map}"),
        Err(Error::NoEmulator { reason, .. }) => println!("emulator: none ({reason})"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `xenvcpu emulatorpin DOMAIN CPUS`: pins every thread of the domain's device model in
/// dom0. CPUS is in dom0's numbering and checked against dom0's online CPUs.
fn emulatorpin(env: &Env, domain: &str, cpus: &str) -> CliResult {
    let dom = env.domain(domain)?;
    let online = crate::process::online_cpus()?;
    let nr = online.last().map_or(0, |l| l + 1);
    let map = crate::cpumap::CpuListContext::new().host_cpus(nr).parse(cpus)?;
    let (pid, affinity) = dom.pin_emulator(&map)?;
    println!("domain {}: emulator (pid {pid}, every thread) pinned to dom0 CPUs {affinity}", dom.id());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::SimHost;
    use crate::xenstore::XsClient;

    /// A simulated lab-shaped host with no store yet.
    fn sim_host() -> Host {
        Host::with_backend(SimHost::lab_like()).unwrap()
    }

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// A "xenstored" that accepts connections and never answers, like one stopped with
    /// SIGSTOP: the kernel queues the connection and the requests; nothing replies.
    struct Silent {
        dir: std::path::PathBuf,
        _listener: std::os::unix::net::UnixListener,
    }

    impl Silent {
        fn new() -> Silent {
            let dir = std::env::temp_dir().join(format!(
                "xenvcpu-silent-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let listener = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
            Silent { dir, _listener: listener }
        }

        /// A command environment over a simulated host with this store.
        fn env(&self) -> Env {
            let mut client = XsClient::open_path(self.dir.join("socket")).unwrap();
            client.set_timeout(TIMEOUT);
            Env::new(sim_host().with_store(client).unwrap())
        }

        fn endpoint(&self) -> String {
            self.dir.join("socket").display().to_string()
        }
    }

    impl Drop for Silent {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn list_with_a_silent_xenstore_finishes_at_once_showing_ids() {
        let silent = Silent::new();
        let env = silent.env();
        let start = Instant::now();
        list(&env, &[], false).unwrap();
        // One timeout (for the first name), not one per domain (3) or per vCPU row (10):
        // the bound leaves room for a loaded machine and still tells them apart.
        assert!(start.elapsed() < TIMEOUT * 5, "{:?}", start.elapsed());
        assert!(env.store_down.get());
        assert_eq!(env.name_of(DomId(0)).as_deref(), Some("Domain-0"));
        assert_eq!(env.name_of(DomId(1)), None, "shown as its id");
    }

    #[test]
    fn a_silent_xenstore_is_exit_4_naming_the_socket() {
        let silent = Silent::new();
        let env = silent.env();
        for result in
            [set(&env, "1", 2, false, None, None), maps(&env, "1", false), set(&env, "labguest", 2, false, None, None)]
        {
            let e = env.classify(result.unwrap_err());
            assert_eq!(e.exit_code(), EXIT_XENSTORE, "{e}");
            assert!(e.to_string().contains(&silent.endpoint()), "{e}");
            assert_eq!(e.error().errno().map(|e| e.raw()), Some(libc::ETIMEDOUT), "{e}");
        }
    }

    #[test]
    fn an_absent_xenstore_is_exit_4_naming_every_endpoint_tried() {
        // A host whose first use of xenstore finds no endpoint at all (this test host has
        // no xenstored).
        let host = sim_host();
        let store = host.store().map(drop);
        assert!(matches!(store, Err(Error::XenStoreUnavailable { .. })), "{store:?}");
        let env = Env::new(host);
        let e = set(&env, "1", 2, false, None, None).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_XENSTORE, "{e}");
        assert!(e.to_string().contains("/run/xenstored/socket") && e.to_string().contains("/dev/xen/xenbus"), "{e}");
        assert_eq!(e.error().errno().map(|e| e.raw()), Some(libc::ENOENT), "{e}");
    }
}
