//! A host agent's building blocks: [`reconcile`] one domain against its placement policy,
//! and [`Agent`], an event loop over xenstore watches that keeps every domain with a policy
//! placed — for embedding in other host agents.
//!
//! A policy is applied to every vCPU `0..max_vcpus`, online or not: Xen keeps the affinity
//! of an offline vCPU, so whichever tool brings it online later (`xl vcpu-set`, the guest
//! itself), it comes up already placed. A reconcile that finds everything right makes read
//! hypercalls only.
//!
//! - [`reconcile`] / [`reconcile_with`]: one domain against its resolved policy: what was
//!   right, what was re-pinned, what drifts, what failed, and the emulator ([`Report`]).
//! - [`Policy`], [`PolicyDir`]: libvirt domain XML files and which domain each is for (the
//!   `<uuid>` wins over the `<name>`).
//! - [`Agent`]: the event loop (placement on introduction, libvirt's hotplug rules on any
//!   tool's availability change, drift checks, reloads), reporting [`Event`]s.
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use xenvcpu::agent::{Agent, Control, Event};
//!
//! let host = xenvcpu::Host::open()?;
//! let mut agent = Agent::new(host, Some(Duration::from_secs(60)));
//! agent.load_dir(Path::new("/etc/libvirt/libxl"))?;
//! agent.set_state_dir("/run/xenvcpu/agent");
//! let control = Control::new(); // stop() and reload() from elsewhere (a signal handler)
//! agent.run(&control, |event: Event| eprintln!("{event}"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod policy;
mod reconcile;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use policy::{find, shadowed, MatchedBy, Policy, PolicyDir, PolicyError};
pub use reconcile::{check_fits, reconcile, reconcile_with, Change, EmulatorOutcome, Options, Repair, Report};

use crate::error::{Error, Result, Uuid};
use crate::ids::{DomId, VcpuSet};
use crate::placement::{LivePlacement, Placement, PlacementMode, Resolved};
use crate::xenstore::{paths, XenStore};
use crate::{Domain, Host, HostInfo};
use state::StateDir;

/// Why a domain was reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The agent's first pass.
    Start,
    /// A domain was introduced (`@introduceDomain`).
    Introduced,
    /// A domain was released (`@releaseDomain`).
    Released,
    /// A placed domain's vCPU availability changed (`cpu/<n>/availability`, by any tool).
    Availability,
    /// The periodic pass: drift is reported, and repaired only when enforcing.
    Periodic,
    /// The policies were reloaded.
    Reload,
}

impl Cause {
    /// The cause as a word: `start`, `introduced`, `released`, `availability`, `periodic`,
    /// `reload`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::Start => "start",
            Cause::Introduced => "introduced",
            Cause::Released => "released",
            Cause::Availability => "availability",
            Cause::Periodic => "periodic",
            Cause::Reload => "reload",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the [`Agent`] reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A domain with a policy was reconciled.
    Reconciled {
        /// Why.
        cause: Cause,
        /// The domain's name.
        name: String,
        /// What was found and done. Its `took` counts from the trigger (the watch event,
        /// or the start of the pass) to the last write.
        report: Report,
    },
    /// A domain's reconcile could not even start (its policy does not fit, say).
    Failed {
        /// Why it was attempted.
        cause: Cause,
        /// The domain.
        domid: DomId,
        /// Its name.
        name: String,
        /// Why it failed.
        error: Error,
    },
    /// vCPUs of a placed domain went offline and lost their `<vcpupin>` (libvirt's
    /// rule): when they return they inherit `<vcpu cpuset>`.
    Unplugged {
        /// The domain.
        domid: DomId,
        /// Its name.
        name: String,
        /// The vCPUs that went offline.
        vcpus: VcpuSet,
        /// Those of them that had a `<vcpupin>`.
        dropped: VcpuSet,
    },
    /// The agent stopped keeping a domain placed: it is gone or was replaced, or a reload
    /// changed or removed its policy (a changed policy places it again at once; without
    /// one it is left as it is).
    Released {
        /// The domain.
        domid: DomId,
        /// Its name.
        name: String,
    },
    /// Something worth knowing that changes nothing (a policy shadowed by its uuid,
    /// `placement='auto'` falling back to every node, an unwritable state file).
    Warning {
        /// The domain, when about one.
        domid: Option<DomId>,
        /// What.
        message: String,
    },
    /// A policy file was refused (it is skipped; the others apply).
    Policy(PolicyError),
    /// The policy directory was (re)loaded.
    Loaded {
        /// The directory.
        dir: PathBuf,
        /// Policies read.
        policies: usize,
        /// Files refused.
        problems: usize,
    },
}

impl Event {
    /// Whether the event reports a failure (a refused policy file, a failed reconcile).
    pub fn is_failure(&self) -> bool {
        match self {
            Event::Reconciled { report, .. } => !report.ok(),
            Event::Failed { .. } | Event::Policy(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Reconciled { cause, name, report } => write!(f, "{cause}: {report} ({name})"),
            Event::Failed { cause, domid, name, error } => write!(f, "{cause}: domain {domid} ({name}): {error}"),
            Event::Unplugged { domid, name, vcpus, dropped } => write!(
                f,
                "availability: domain {domid} ({name}): vCPUs {vcpus} went offline; <vcpupin> dropped for {}",
                if dropped.is_empty() { "none".to_owned() } else { dropped.to_string() }
            ),
            Event::Released { domid, name } => write!(f, "released: domain {domid} ({name})"),
            Event::Warning { domid: Some(domid), message } => write!(f, "warning: domain {domid}: {message}"),
            Event::Warning { domid: None, message } => write!(f, "warning: {message}"),
            Event::Policy(e) => write!(f, "policy refused: {e}"),
            Event::Loaded { dir, policies, problems } => {
                write!(f, "loaded {}: {policies} policies, {problems} refused", dir.display())
            }
        }
    }
}

/// Stops an [`Agent::run`] or makes it reload its policies; safe to use from a signal
/// handler (each is one atomic store).
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    reload: AtomicBool,
}

impl Control {
    /// A control with nothing asked.
    pub const fn new() -> Control {
        Control { stop: AtomicBool::new(false), reload: AtomicBool::new(false) }
    }

    /// Asks the loop to stop (it removes its watches and returns).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Asks the loop to reload its policy directory.
    pub fn reload(&self) {
        self.reload.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }
}

/// What a pass did, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Domains with a policy, reconciled.
    pub domains: usize,
    /// Failures (failed reconciles, failed vCPUs or emulators, refused policy files).
    pub failed: usize,
    /// Affinity writes made.
    pub writes: usize,
    /// vCPUs (and emulators) found off their policy and left there.
    pub drift: usize,
}

impl Summary {
    fn count(&mut self, event: &Event) {
        self.failed += usize::from(event.is_failure());
        if let Event::Reconciled { report, .. } = event {
            self.domains += 1;
            self.writes += report.writes();
            self.drift += report.drift.len() + usize::from(matches!(report.emulator, EmulatorOutcome::Drift { .. }));
        }
    }
}

/// A domain the agent keeps placed.
#[derive(Debug)]
struct Placed {
    uuid: Uuid,
    name: String,
    policy: Policy,
    /// The policy less the pins dropped by hot-unplugs, and the vCPUs online.
    live: LivePlacement,
    /// The `<vcpupin>`s dropped so far.
    dropped: VcpuSet,
    /// Whether the domain had availability nodes when placed (dom0 has none).
    has_nodes: bool,
}

/// The watch token of the agent's watches.
const TOKEN: &str = "xenvcpu-agent";

/// An event loop that keeps every domain with a policy placed.
///
/// - A domain is placed when first seen (at start, or when introduced): every vCPU
///   `0..max`, online or not, and its emulator, are pinned per its policy.
/// - When a placed domain's vCPU availability changes (`xl vcpu-set`, `xenvcpu set`, …),
///   vCPUs that went offline lose their `<vcpupin>` and are re-pinned to what they will
///   inherit; vCPUs that came online are checked (pre-pinning put them right already).
///   The agent compares the availability it reads with the one it read before, so a vCPU
///   brought online and offline again before the agent read the first change keeps its
///   pin (it was never online as far as the agent saw).
/// - Every `interval`, each placed domain is compared with its policy: drift (someone ran
///   `xl vcpu-pin`) is reported, and repaired only when enforcing
///   ([`Agent::set_enforce`]).
/// - [`Control::reload`] re-reads the policy directory; domains whose policy changed are
///   placed again.
///
/// A reconcile that finds everything right makes read hypercalls only. With a state
/// directory ([`Agent::set_state_dir`]) the dropped pins outlive the agent, so a restarted
/// agent writes nothing that is right.
#[derive(Debug)]
pub struct Agent {
    host: Host,
    /// Policies given in code.
    given: Vec<Policy>,
    /// The policy directory and its policies.
    dir: Option<PolicyDir>,
    interval: Option<Duration>,
    dry_run: bool,
    enforce: bool,
    state: Option<StateDir>,
    placed: BTreeMap<DomId, Placed>,
    /// Domains looked at that have no (usable) policy, by uuid: not looked at again until
    /// a reload or a new domain under the id.
    unplaced: BTreeMap<DomId, Uuid>,
}

impl Agent {
    /// An agent for `host`, with a periodic reconcile every `interval` (`None`: only on
    /// events).
    pub fn new(host: Host, interval: Option<Duration>) -> Agent {
        Agent {
            host,
            given: Vec::new(),
            dir: None,
            interval,
            dry_run: false,
            enforce: false,
            state: None,
            placed: BTreeMap::new(),
            unplaced: BTreeMap::new(),
        }
    }

    /// Sets the policy of the domain named `name` (replacing one given before).
    pub fn set_policy(&mut self, name: impl Into<String>, placement: Placement) {
        let policy = Policy::for_name(name, placement);
        self.given.retain(|p| !(p.uuid.is_none() && p.name == policy.name));
        self.given.push(policy);
    }

    /// Adds a policy (matched by its uuid, else its name).
    pub fn add_policy(&mut self, policy: Policy) {
        self.given.push(policy);
    }

    /// Reads the policies of `dir` ([`PolicyDir::load`]), replacing those read before; a
    /// [`Control::reload`] reads it again. Returns it, with the files refused.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn load_dir(&mut self, dir: &Path) -> Result<&PolicyDir> {
        Ok(self.dir.insert(PolicyDir::load(dir)?))
    }

    /// Reports what would change without writing anything.
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.dry_run = dry_run;
    }

    /// Makes the periodic pass repair drift, not only report it.
    pub fn set_enforce(&mut self, enforce: bool) {
        self.enforce = enforce;
    }

    /// Keeps the live state (the pins dropped by hot-unplugs) in `dir`, so that it
    /// outlives the agent.
    pub fn set_state_dir(&mut self, dir: impl Into<PathBuf>) {
        self.state = Some(StateDir::new(dir));
    }

    /// The domains placed now.
    pub fn placed(&self) -> Vec<DomId> {
        self.placed.keys().copied().collect()
    }

    fn policies(&self) -> Vec<Policy> {
        self.given.iter().chain(self.dir.iter().flat_map(|d| d.policies.iter())).cloned().collect()
    }

    /// Places every running domain that has a policy, once (`xenvcpu agent --once`).
    ///
    /// # Errors
    /// A failed listing of the domains or of their names; per-domain failures are events.
    pub fn reconcile_all(&mut self, on_event: &mut impl FnMut(Event)) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut counted = |e: Event| {
            summary.count(&e);
            on_event(e)
        };
        if let Some(dir) = &self.dir {
            for problem in &dir.problems {
                counted(Event::Policy(clone_problem(problem)));
            }
        }
        self.pass(Cause::Start, Instant::now(), &mut counted)?;
        Ok(summary)
    }

    /// Resolves a live placement for `dom`: `placement='auto'` takes the domain's node
    /// affinity (where libxl placed its memory), with a warning when that is every node.
    fn resolve(
        &self,
        dom: &Domain,
        placement: &Placement,
        info: &HostInfo,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Resolved> {
        if placement.mode != PlacementMode::Auto {
            return Ok(placement.resolve(info, None)?);
        }
        let advisory = dom.advisory_nodeset()?;
        if let Some(warning) = advisory.warning() {
            on_event(Event::Warning { domid: Some(dom.id()), message: warning.to_string() });
        }
        Ok(placement.resolve(info, Some(advisory.nodes()))?)
    }

    /// One pass over the running domains: places those seen for the first time, forgets
    /// those gone, and on a periodic pass checks the placed ones for drift.
    fn pass(&mut self, cause: Cause, since: Instant, on_event: &mut dyn FnMut(Event)) -> Result<()> {
        // A dying domain is as good as gone: xenstored fires @releaseDomain while Xen still
        // lists it (with the dying flag) until its last page is freed.
        let domains: Vec<_> = self.host.domains()?.into_iter().filter(|d| !d.flags.dying).collect();
        let mut info: Option<HostInfo> = None;
        let policies = self.policies();
        let mut seen = BTreeSet::new();
        for d in &domains {
            let (domid, uuid) = (d.domid, Uuid(d.uuid));
            seen.insert(domid);
            match self.placed.get(&domid) {
                Some(p) if p.uuid == uuid => {
                    if cause == Cause::Periodic {
                        let info = match &info {
                            Some(i) => i,
                            None => info.insert(self.host.info()?),
                        };
                        self.check(domid, info, on_event);
                    }
                    continue;
                }
                Some(_) => self.forget(domid, on_event),
                None => {}
            }
            if self.unplaced.get(&domid) == Some(&uuid) {
                continue;
            }
            let Some(name) = self.host.domain_name(domid)? else { continue };
            let policy = match find(&policies, Some(&name), uuid) {
                Ok(Some((policy, _))) => policy.clone(),
                Ok(None) => {
                    for p in shadowed(&policies, &name, uuid) {
                        on_event(Event::Warning {
                            domid: Some(domid),
                            message: format!(
                                "{p} names {name} but its <uuid> {} is not this domain's ({uuid}): the uuid wins, \
                                 so it is not applied",
                                p.uuid.unwrap_or_default()
                            ),
                        });
                    }
                    self.unplaced.insert(domid, uuid);
                    continue;
                }
                Err(conflict) => {
                    on_event(Event::Policy(conflict));
                    self.unplaced.insert(domid, uuid);
                    continue;
                }
            };
            let info = match &info {
                Some(i) => i,
                None => info.insert(self.host.info()?),
            };
            match self.place(domid, uuid, &name, policy, info, on_event) {
                Ok(mut report) => {
                    report.took = since.elapsed();
                    on_event(Event::Reconciled { cause, name, report });
                }
                Err(error) => {
                    self.unplaced.insert(domid, uuid);
                    on_event(Event::Failed { cause, domid, name, error });
                }
            }
        }
        let gone: Vec<DomId> = self.placed.keys().filter(|d| !seen.contains(d)).copied().collect();
        for domid in gone {
            self.forget(domid, on_event);
        }
        self.unplaced.retain(|d, _| seen.contains(d));
        Ok(())
    }

    /// Places a domain seen for the first time: its live placement (with the pins a
    /// former run recorded as dropped), then every vCPU and the emulator.
    fn place(
        &mut self,
        domid: DomId,
        uuid: Uuid,
        name: &str,
        policy: Policy,
        info: &HostInfo,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Report> {
        let dom = self.host.domain(domid)?;
        let dropped = match &self.state {
            Some(state) => state.load(uuid, domid).unwrap_or_else(|e| {
                on_event(Event::Warning { domid: Some(domid), message: format!("ignoring its state file: {e}") });
                VcpuSet::new()
            }),
            None => VcpuSet::new(),
        };
        let mut placement = policy.placement.clone();
        for vcpu in dropped.iter() {
            placement.vcpupins.remove(&vcpu.get());
        }
        let requested = dom.requested_vcpus()?;
        let has_nodes = requested.is_some();
        let online = match requested {
            Some(set) => set,
            None => dom.online_vcpus()?,
        };
        let live = LivePlacement::with_online(placement, &online)?;
        let resolved = self.resolve(&dom, live.placement(), info, on_event)?;
        let options = Options { dry_run: self.dry_run, repair: Repair::All, emulator: true };
        let report = reconcile_with(&dom, &resolved, &options)?;
        self.placed.insert(domid, Placed { uuid, name: name.to_owned(), policy, live, dropped, has_nodes });
        Ok(report)
    }

    /// The periodic check of a placed domain.
    fn check(&mut self, domid: DomId, info: &HostInfo, on_event: &mut dyn FnMut(Event)) {
        let Some(p) = self.placed.get(&domid) else { return };
        let name = p.name.clone();
        let repair = if self.enforce { Repair::All } else { Repair::Nothing };
        let start = Instant::now();
        let result = self.host.domain(domid).and_then(|dom| {
            let resolved = self.resolve(&dom, p.live.placement(), info, on_event)?;
            reconcile_with(&dom, &resolved, &Options { dry_run: self.dry_run, repair, emulator: true })
        });
        match result {
            Ok(mut report) => {
                report.took = start.elapsed();
                on_event(Event::Reconciled { cause: Cause::Periodic, name, report });
            }
            Err(error) => on_event(Event::Failed { cause: Cause::Periodic, domid, name, error }),
        }
    }

    /// A placed domain's availability changed: libvirt's hotplug rules, then the vCPUs
    /// that changed state are put on the live policy.
    fn availability(&mut self, domid: DomId, since: Instant, on_event: &mut dyn FnMut(Event)) -> Result<()> {
        let Some(p) = self.placed.get(&domid) else { return Ok(()) };
        let dom = match self.host.domain(domid) {
            Ok(dom) if dom.info().uuid == p.uuid.0 && !dom.info().flags.dying => dom,
            // Gone, dying or replaced: the release (or introduction) event handles it.
            _ => return Ok(()),
        };
        let now = match dom.requested_vcpus()? {
            Some(requested) => requested,
            // The toolstack removed the domain's nodes: it is being destroyed (xl removes
            // them before the domain dies), not unplugging vCPUs.
            None if p.has_nodes => return Ok(()),
            None => dom.online_vcpus()?,
        };
        let went = p.live.online().difference(&now);
        let came = now.difference(p.live.online());
        if went.is_empty() && came.is_empty() {
            return Ok(());
        }
        let name = p.name.clone();
        let mut live = p.live.clone();
        let dropped = live.on_vcpus_offline(&went)?;
        let live = LivePlacement::with_online(live.into_placement(), &now)?;
        if !went.is_empty() {
            on_event(Event::Unplugged { domid, name: name.clone(), vcpus: went.clone(), dropped: dropped.clone() });
        }
        let info = self.host.info()?;
        let outcome = self.resolve(&dom, live.placement(), &info, on_event).and_then(|resolved| {
            let options = Options { dry_run: self.dry_run, repair: Repair::Only(went.union(&came)), emulator: false };
            reconcile_with(&dom, &resolved, &options)
        });
        let p = self.placed.get_mut(&domid).expect("placed above");
        p.live = live;
        if !dropped.is_empty() {
            p.dropped = p.dropped.union(&dropped);
            if let (Some(state), false) = (&self.state, self.dry_run) {
                if let Err(e) = state.save(p.uuid, domid, &p.dropped) {
                    on_event(Event::Warning { domid: Some(domid), message: format!("cannot record its state: {e}") });
                }
            }
        }
        match outcome {
            Ok(mut report) => {
                report.took = since.elapsed();
                on_event(Event::Reconciled { cause: Cause::Availability, name, report });
            }
            Err(error) => on_event(Event::Failed { cause: Cause::Availability, domid, name, error }),
        }
        Ok(())
    }

    /// Stops keeping a domain placed (it is gone, replaced, or lost its policy).
    fn forget(&mut self, domid: DomId, on_event: &mut dyn FnMut(Event)) {
        if let Some(p) = self.placed.remove(&domid) {
            if let (Some(state), false) = (&self.state, self.dry_run) {
                let _ = state.remove(p.uuid);
            }
            on_event(Event::Released { domid, name: p.name });
        }
    }

    /// Re-reads the policy directory; domains whose policy changed are forgotten, to be
    /// placed again by the next pass.
    fn reload(&mut self, on_event: &mut dyn FnMut(Event)) {
        let Some(dir) = self.dir.as_ref().map(|d| d.dir.clone()) else { return };
        match PolicyDir::load(&dir) {
            Ok(loaded) => {
                on_event(Event::Loaded { dir, policies: loaded.policies.len(), problems: loaded.problems.len() });
                for problem in &loaded.problems {
                    on_event(Event::Policy(clone_problem(problem)));
                }
                self.dir = Some(loaded);
            }
            Err(error) => {
                on_event(Event::Warning {
                    domid: None,
                    message: format!("reload failed, keeping the policies: {error}"),
                });
                return;
            }
        }
        let policies = self.policies();
        let changed: Vec<DomId> = self
            .placed
            .iter()
            .filter(|(_, p)| find(&policies, Some(&p.name), p.uuid).ok().flatten().map(|(q, _)| q) != Some(&p.policy))
            .map(|(d, _)| *d)
            .collect();
        for domid in changed {
            self.forget(domid, on_event);
        }
        self.unplaced.clear();
    }

    /// Runs until [`Control::stop`]: a first pass that places every domain with a policy,
    /// then a pass on every introduction or release of a domain, the hotplug rules on
    /// every availability change of a placed domain, a reload on [`Control::reload`], and
    /// the periodic check every `interval`. Removes its watches on the way out.
    ///
    /// # Errors
    /// A failed watch or xenstore read, or a failed listing of the domains.
    pub fn run(&mut self, control: &Control, mut on_event: impl FnMut(Event)) -> Result<()> {
        // The host is shared (a clone is another handle on it), so the store can be
        // borrowed while the loop changes the agent.
        let host = self.host.clone();
        let store = host.store()?;
        let xs = |e| host.store_error(e);
        for special in ["@introduceDomain", "@releaseDomain"] {
            store.watch(special, TOKEN).map_err(xs)?;
        }
        let mut watched = BTreeSet::new();
        let result = self.event_loop(store, control, &mut watched, &mut on_event);
        // Every watch is removed; the loop's own failure comes first, then an unwatch's.
        let mut unwatched = Ok(());
        let paths: Vec<String> = watched.iter().map(|d: &DomId| paths::cpu_dir(d.get())).collect();
        for path in paths.iter().map(String::as_str).chain(["@introduceDomain", "@releaseDomain"]) {
            if let Err(e) = store.unwatch(path, TOKEN) {
                unwatched = unwatched.and(Err(host.store_error(e)));
            }
        }
        result.and(unwatched)
    }

    fn event_loop(
        &mut self,
        store: &dyn XenStore,
        control: &Control,
        watched: &mut BTreeSet<DomId>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<()> {
        if let Some(dir) = &self.dir {
            for problem in &dir.problems {
                on_event(Event::Policy(clone_problem(problem)));
            }
        }
        self.pass(Cause::Start, Instant::now(), on_event)?;
        let mut next_check = self.interval.map(|i| Instant::now() + i);
        while !control.stopped() {
            // Watch the cpu directory of every placed domain, and only those.
            let placed: BTreeSet<DomId> = self.placed.keys().copied().collect();
            for domid in placed.difference(watched) {
                store.watch(&paths::cpu_dir(domid.get()), TOKEN).map_err(|e| self.host.store_error(e))?;
            }
            for domid in watched.difference(&placed) {
                // The domain may be gone with its nodes; the watch goes all the same.
                let _ = store.unwatch(&paths::cpu_dir(domid.get()), TOKEN);
            }
            *watched = placed;

            if control.take_reload() {
                self.reload(on_event);
                self.pass(Cause::Reload, Instant::now(), on_event)?;
                continue;
            }
            if let Some(at) = next_check.filter(|at| Instant::now() >= *at) {
                self.pass(Cause::Periodic, Instant::now(), on_event)?;
                next_check = self.interval.map(|i| at.max(Instant::now()) + i);
            }
            let Some(event) = store.next_event(Duration::from_millis(100)).map_err(|e| self.host.store_error(e))?
            else {
                continue;
            };
            if event.token != TOKEN {
                continue;
            }
            let since = Instant::now();
            match event.path.as_str() {
                "@introduceDomain" => self.pass(Cause::Introduced, since, on_event)?,
                "@releaseDomain" => self.pass(Cause::Released, since, on_event)?,
                path => {
                    if let Some(domid) = cpu_event_domid(path) {
                        self.availability(domid, since, on_event)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The domain of a watch event under `/local/domain/<domid>/cpu`.
fn cpu_event_domid(path: &str) -> Option<DomId> {
    let rest = path.strip_prefix("/local/domain/")?;
    let (domid, rest) = rest.split_once('/')?;
    (rest == "cpu" || rest.starts_with("cpu/")).then(|| domid.parse().ok().map(DomId)).flatten()
}

/// A policy problem again, for another report (an I/O error is not `Clone`).
fn clone_problem(problem: &PolicyError) -> PolicyError {
    match problem {
        PolicyError::Io { file, error } => {
            PolicyError::Io { file: file.clone(), error: std::io::Error::new(error.kind(), error.to_string()) }
        }
        PolicyError::Placement { source_name, error } => {
            PolicyError::Placement { source_name: source_name.clone(), error: error.clone() }
        }
        PolicyError::BadUuid { source_name, message } => {
            PolicyError::BadUuid { source_name: source_name.clone(), message: message.clone() }
        }
        PolicyError::NoDomain { source_name } => PolicyError::NoDomain { source_name: source_name.clone() },
        PolicyError::Conflict { domain, sources } => {
            PolicyError::Conflict { domain: domain.clone(), sources: sources.clone() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_events_name_their_domain() {
        assert_eq!(cpu_event_domid("/local/domain/5/cpu/2/availability"), Some(DomId(5)));
        assert_eq!(cpu_event_domid("/local/domain/5/cpu"), Some(DomId(5)));
        assert_eq!(cpu_event_domid("/local/domain/5/cpus"), None);
        assert_eq!(cpu_event_domid("/local/domain/x/cpu"), None);
        assert_eq!(cpu_event_domid("@releaseDomain"), None);
    }
}
