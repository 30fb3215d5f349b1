//! The commands of `xenvcpu`: each opens the host, calls the library, prints.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use xenvcpu::cpumap::CpuMap;
use xenvcpu::placement::Placement;
use xenvcpu::sim::SimPlatform;
use xenvcpu::xenstore::{XenStore, XsClient};
use xenvcpu::{
    AffinityRequest, AvailabilityChange, Domain, Effective, Error, Host, HostInfo, VcpuInfo, VcpuMaps, VcpuState,
};

/// A failure of a command, with the exit code that classifies it.
#[derive(Debug)]
pub struct CliError {
    error: Error,
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        CliError { error }
    }
}

impl From<xenvcpu::placement::PlacementError> for CliError {
    fn from(e: xenvcpu::placement::PlacementError) -> Self {
        CliError { error: e.into() }
    }
}

impl From<xenvcpu::cpumap::CpuListError> for CliError {
    fn from(e: xenvcpu::cpumap::CpuListError) -> Self {
        CliError { error: e.into() }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl CliError {
    /// 2 for what the user can fix in the command line, 3 for the environment, 1 for what
    /// the hypervisor or xenstore refused.
    pub fn exit_code(&self) -> u8 {
        match &self.error {
            Error::CpuList(_)
            | Error::CpusBeyondHost { .. }
            | Error::VcpuOutOfRange { .. }
            | Error::EmptyMap { .. }
            | Error::NoSuchDomain { .. }
            | Error::NoSuchDomainName { .. }
            | Error::InvalidArgument(_)
            | Error::MaxVcpusFixed { .. }
            | Error::VcpuCountOutOfRange { .. }
            | Error::Vcpu0Offline { .. }
            | Error::Placement(_)
            | Error::NoEmulator { .. }
            | Error::EmptyProcessMap { .. }
            | Error::CpuMap(_) => 2,
            Error::NoXen(_)
            | Error::LibraryNotFound(_)
            | Error::Permission(_)
            | Error::Denied { .. }
            | Error::VersionMismatch { .. } => 3,
            _ => 1,
        }
    }
}

type CliResult<T = ()> = Result<T, CliError>;

/// What a command works with: the host, xenstore (when reachable) and, for
/// `XENVCPU_BACKEND=sim`, the simulated platform behind both.
struct Env {
    host: Host,
    store: Result<Box<dyn XenStore>, Error>,
    _sim: Option<SimPlatform>,
}

/// Opens the real hypervisor and xenstore, or the simulated lab-shaped platform when
/// `XENVCPU_BACKEND=sim` (for trying the command and testing it without Xen; never chosen
/// implicitly).
fn open() -> CliResult<Env> {
    // The library never prints: show its warnings (e.g. an environment override ignored in
    // a set-user-ID process). libxenctrl's errors come back inside the returned Error.
    xenvcpu::set_log_hook(Some(Box::new(|level, message| {
        if level == xenvcpu::LogLevel::Warn {
            eprintln!("xenvcpu: warning: {message}");
        }
    })));
    let backend = xenvcpu::secure_env_var("XENVCPU_BACKEND").map(|v| v.to_string_lossy().into_owned());
    match backend.as_deref() {
        Some("sim") => {
            let sim = SimPlatform::lab_like()?;
            Ok(Env { host: sim.host.clone(), store: Ok(Box::new(sim.store.connect())), _sim: Some(sim) })
        }
        Some("xenctrl") | None => {
            let host = Host::open()?;
            let store = XsClient::open().map(|c| Box::new(c) as Box<dyn XenStore>).map_err(Error::from);
            Ok(Env { host, store, _sim: None })
        }
        Some(other) => Err(Error::InvalidArgument(format!("XENVCPU_BACKEND={other:?}: use xenctrl or sim")).into()),
    }
}

impl Env {
    /// The store, or why it cannot be reached.
    fn store(&self) -> CliResult<&dyn XenStore> {
        match &self.store {
            Ok(store) => Ok(&**store),
            Err(e) => Err(Error::InvalidArgument(format!("this needs xenstore, which is unreachable: {e}")).into()),
        }
    }

    /// A domain's name from xenstore (`Domain-0` for dom0 when xenstore is unreachable).
    fn name_of(&self, domid: u32) -> Option<String> {
        match &self.store {
            Ok(store) => xenvcpu::domain_name(&**store, domid).ok().flatten(),
            Err(_) => (domid == 0).then(|| "Domain-0".to_string()),
        }
    }

    /// A domain by id or name (names through xenstore, as xl does).
    fn domain(&self, spec: &str) -> CliResult<Domain> {
        let id = match spec.parse::<u32>() {
            Ok(id) => id,
            Err(_) if spec == "Domain-0" => 0,
            Err(_) => xenvcpu::domain_id(self.store()?, spec)?,
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
pub fn info(json: bool) -> CliResult {
    let host = open()?.host;
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
                .map(|(cpu, t)| CpuJson { cpu, online: t.is_online(), core: t.core, socket: t.socket, node: t.node })
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
    println!("{:>5} {:>6} {:>6} {:>6}", "cpu", "core", "socket", "node");
    let show = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    for (cpu, t) in info.cpus.iter().enumerate() {
        println!("{cpu:>5} {:>6} {:>6} {:>6}", show(t.core), show(t.socket), show(t.node));
    }
    Ok(())
}

// ---- list ------------------------------------------------------------------------------

#[derive(Serialize)]
struct VcpuJson {
    domain: Option<String>,
    domid: u32,
    vcpu: u32,
    cpu: Option<u32>,
    state: &'static str,
    time_ns: u64,
    hard: String,
    soft: String,
}

/// `xenvcpu list [DOMAIN...]`.
pub fn list(domains: &[String], json: bool) -> CliResult {
    let env = open()?;
    let host = &env.host;
    let ids: Vec<u32> = if domains.is_empty() {
        host.domains()?.iter().filter(|d| d.max_vcpu_id.is_some()).map(|d| d.domid).collect()
    } else {
        domains.iter().map(|d| env.domain(d).map(|d| d.id())).collect::<CliResult<_>>()?
    };
    let mut rows = Vec::new();
    for id in ids {
        let dom = match host.domain(id) {
            // A domain destroyed since the listing is no longer there to show.
            Err(Error::NoSuchDomain { .. }) if domains.is_empty() => continue,
            other => other?,
        };
        for v in dom.vcpus()? {
            rows.push((env.name_of(id), id, v));
        }
    }
    let nr_cpus = host.nr_cpus();
    if json {
        let out: Vec<VcpuJson> = rows
            .into_iter()
            .map(|(domain, domid, v)| VcpuJson {
                domain,
                domid,
                vcpu: v.vcpu,
                cpu: v.cpu,
                state: state_word(v.state),
                time_ns: v.cpu_time_ns,
                hard: v.hard.to_string(),
                soft: v.soft.to_string(),
            })
            .collect();
        return print_json(&out);
    }
    println!(
        "{:<24} {:>5} {:>5} {:>4} {:<8} {:>9}  Affinity (Hard / Soft)",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)"
    );
    for (name, id, v) in rows {
        let cpu = v.cpu.map_or("-".to_string(), |c| c.to_string());
        println!(
            "{:<24} {:>5} {:>5} {:>4} {:<8} {:>9.1}  {} / {}",
            name.as_deref().unwrap_or("-"),
            id,
            v.vcpu,
            cpu,
            state_word(v.state),
            v.cpu_time_ns as f64 / 1e9,
            map_text(&v.hard, nr_cpus),
            map_text(&v.soft, nr_cpus)
        );
    }
    Ok(())
}

// ---- pin -------------------------------------------------------------------------------

/// Parses a vCPU argument: `all`, or a cpu-list of vCPU numbers (the library checks that
/// the domain has them).
fn parse_vcpus(dom: &Domain, spec: &str) -> CliResult<CpuMap> {
    let vcpus = if spec == "all" { CpuMap::all(dom.max_vcpus() as usize) } else { spec.parse::<CpuMap>()? };
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
pub fn pin(domain: &str, vcpus: &str, hard: &str, soft: Option<&str>, force: bool) -> CliResult {
    let env = open()?;
    let host = &env.host;
    let dom = env.domain(domain)?;
    let vcpus = parse_vcpus(&dom, vcpus)?;
    let nodes = host.info()?.node_cpus();
    let (hard, soft) = (parse_map(host, &nodes, Some(hard))?, parse_map(host, &nodes, soft)?);
    let req = AffinityRequest { hard: hard.as_ref(), soft: soft.as_ref(), force };
    let done = dom.pin(&vcpus, &req)?;
    for (vcpu, eff) in &done {
        report_effective(dom.id(), *vcpu, &req, eff, host.nr_cpus());
    }
    Ok(())
}

fn report_effective(domid: u32, vcpu: u32, req: &AffinityRequest<'_>, eff: &Effective, nr_cpus: usize) {
    let show = |m: &Option<CpuMap>| m.as_ref().map_or("(unchanged)".to_string(), |m| map_text(m, nr_cpus));
    println!("domain {domid} vCPU {vcpu}: hard {} / soft {}", show(&eff.hard), show(&eff.soft));
    let (hard_lost, soft_lost) = eff.dropped(req);
    if !hard_lost.is_empty() {
        eprintln!(
            "xenvcpu: warning: Xen dropped CPUs {hard_lost} from the hard affinity of vCPU {vcpu} \
             (offline or outside the domain's cpupool)"
        );
    }
    if !soft_lost.is_empty() {
        eprintln!(
            "xenvcpu: warning: Xen dropped CPUs {soft_lost} from the soft affinity of vCPU {vcpu} \
             (outside its hard affinity, offline or outside the cpupool)"
        );
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

/// `xenvcpu bench pin DOMAIN [--vcpus LIST] [--iterations N]`: alternates each vCPU's hard
/// affinity between all CPUs and a single CPU, through the library's allocation-free path;
/// the previous affinity is restored afterwards.
pub fn bench_pin(domain: &str, vcpus: Option<&str>, iterations: u32, json: bool) -> CliResult {
    let env = open()?;
    let host = &env.host;
    let dom = env.domain(domain)?;
    let vcpus = parse_vcpus(&dom, vcpus.unwrap_or("all"))?;
    if iterations == 0 {
        return Err(Error::InvalidArgument("--iterations must be at least 1".into()).into());
    }
    let order: Vec<u32> = vcpus.iter().map(|v| v as u32).collect();
    let saved: Vec<VcpuInfo> = order.iter().map(|&v| dom.vcpu_info(v)).collect::<Result<_, _>>()?;
    let maps = [CpuMap::all(host.nr_cpus()), CpuMap::from_iter([0])];
    let mut eff = Effective { hard: Some(CpuMap::with_capacity(host.nr_cpus())), soft: None };
    let mut times = Vec::with_capacity(iterations as usize);
    let start = Instant::now();
    let mut outcome = Ok(());
    for i in 0..iterations as usize {
        let req = AffinityRequest::hard(&maps[(i / order.len()) % 2]);
        let t = Instant::now();
        if let Err(e) = dom.set_affinity_into(order[i % order.len()], &req, &mut eff) {
            outcome = Err(e);
            break;
        }
        times.push(t.elapsed().as_nanos() as u64);
    }
    let total = start.elapsed();
    for v in &saved {
        dom.set_affinity(v.vcpu, &AffinityRequest::both(&v.hard, &v.soft).forced())?;
    }
    outcome?;
    times.sort_unstable();
    let pct = |p: usize| times[(times.len() - 1) * p / 100];
    let result = BenchJson {
        domid: dom.id(),
        vcpus: vcpus.to_string(),
        iterations,
        updates_per_sec: f64::from(iterations) / total.as_secs_f64(),
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
    Ok(())
}

// ---- set, state, maps ------------------------------------------------------------------

fn report_change(dom: &Domain, change: &AvailabilityChange, wait: Option<f64>) -> CliResult {
    let before = change.before.as_ref().map_or("(no availability nodes)".to_string(), ToString::to_string);
    if change.written {
        println!("domain {}: vCPUs {} requested online (before: {before})", dom.id(), change.after);
    } else {
        println!("domain {}: vCPUs {} already requested online: nothing to change", dom.id(), change.after);
    }
    if let Some(secs) = wait {
        if !secs.is_finite() || secs < 0.0 {
            return Err(Error::InvalidArgument(format!("--wait {secs}: give a number of seconds >= 0")).into());
        }
        let start = Instant::now();
        dom.wait_for_vcpus(&change.after, Duration::from_secs_f64(secs))?;
        println!("domain {}: the guest followed in {} ms", dom.id(), start.elapsed().as_millis());
    }
    Ok(())
}

/// `xenvcpu set DOMAIN COUNT [--wait SECONDS]`.
pub fn set(domain: &str, count: u32, wait: Option<f64>) -> CliResult {
    let env = open()?;
    let dom = env.domain(domain)?;
    let change = dom.set_vcpu_count(env.store()?, count)?;
    report_change(&dom, &change, wait)
}

/// `xenvcpu state DOMAIN VCPUS on|off [--wait SECONDS]`.
pub fn state(domain: &str, vcpus: &str, on: bool, wait: Option<f64>) -> CliResult {
    let env = open()?;
    let dom = env.domain(domain)?;
    let vcpus = parse_vcpus(&dom, vcpus)?;
    let change = dom.set_vcpus_online(env.store()?, &vcpus, on)?;
    report_change(&dom, &change, wait)
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
pub fn maps(domain: &str, json: bool) -> CliResult {
    let env = open()?;
    let dom = env.domain(domain)?;
    let m: VcpuMaps = dom.vcpu_maps(env.store()?)?;
    let out = MapsJson {
        domid: dom.id(),
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
/// domain XML (`<vcpu>`, `<cputune>`) for this host and shows it; `--commit` pins every
/// online vCPU accordingly (one operation, rolled back on failure).
pub fn apply(domain: &str, file: &str, nodeset: Option<&str>, commit: bool) -> CliResult {
    let env = open()?;
    let dom = env.domain(domain)?;
    let xml = std::fs::read_to_string(file).map_err(|e| Error::InvalidArgument(format!("cannot read {file}: {e}")))?;
    let placement = Placement::from_xml(&xml)?;
    let info = env.host.info()?;
    let nodeset = nodeset.map(|list| list.parse::<CpuMap>()).transpose()?;
    let resolved = placement.resolve(&info, nodeset.as_ref())?;
    print!("{}", resolved.table());
    if !commit {
        println!("(dry run: nothing applied; --commit pins the online vCPUs)");
        return Ok(());
    }
    for (vcpu, eff) in dom.apply_placement(&resolved)? {
        let req_map = &resolved.vcpus[vcpu as usize].cpus;
        report_effective(dom.id(), vcpu, &AffinityRequest::hard(req_map), &eff, env.host.nr_cpus());
    }
    Ok(())
}

/// `xenvcpu emulatorpin DOMAIN CPUS`: pins the domain's device model in dom0.
pub fn emulatorpin(domain: &str, cpus: &str) -> CliResult {
    let env = open()?;
    let dom = env.domain(domain)?;
    let nodes = env.host.info()?.node_cpus();
    let map = env.host.cpu_list_context(&nodes).parse(cpus)?;
    let pid = dom.pin_emulator(env.store()?, &map)?;
    println!("domain {}: emulator (pid {pid}) pinned to {}", dom.id(), xenvcpu::process_affinity(pid)?);
    Ok(())
}
