//! The agent suite: the host agent's behaviours, written once and run against both the
//! simulated platform on every `cargo test` (tests/agent_sim.rs) and real Xen in the lab
//! (tests/lab_agent.rs), where "another tool" is `xl` itself.
//!
//! Every check starts from the lab guest as the lab leaves it (vCPUs 0-1 online of 4, every
//! vCPU on all CPUs) and puts it back that way, also when it fails.

#![allow(dead_code)] // each test binary uses part of the fixture

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xenvcpu::agent::{Agent, Cause, Control, Event, Summary};
use xenvcpu::{AffinityRequest, DomId, Domain, Host, VcpuId, VcpuSet};

#[path = "../support/suite_guard.rs"]
mod suite_guard;

#[path = "../support/counting.rs"]
mod counting;
pub use counting::Counting;

/// What another toolstack does, behind the agent's back: `xl` in the lab; the same
/// xenstore and hypercall writes on the simulator.
pub trait Toolstack: Send + Sync {
    /// `xl vcpu-set NAME COUNT`.
    fn vcpu_set(&self, name: &str, count: u32);
    /// `xl vcpu-pin NAME VCPU CPUS`.
    fn vcpu_pin(&self, name: &str, vcpu: u32, cpus: &str);
    /// `xl create -p` of a guest shaped like the lab guest (4 vCPUs, 2 online), named
    /// `name`; returns its id.
    fn create(&self, name: &str) -> DomId;
    /// `xl destroy`.
    fn destroy(&self, name: &str);
    /// `xl vcpu-list NAME`: each vCPU's state and hard affinity as xl prints them (the
    /// state is `r`/`-`, `b`/`-`, then `p` when the vCPU is offline: `--p`).
    fn vcpu_list(&self, name: &str) -> Vec<(String, String)>;
}

/// What a check runs against.
pub struct Fixture {
    /// The host, through [`Fixture::counter`].
    pub host: Host,
    /// Counts the hypercalls the host makes.
    pub counter: std::sync::Arc<Counting>,
    /// The lab guest's name.
    pub guest: String,
    /// The other toolstack.
    pub xl: Box<dyn Toolstack>,
    /// How long the guest may take to follow an availability change.
    pub follow: Duration,
}

/// The policy of the lab guest: `<vcpu cpuset='0-1'>` plus a `<vcpupin>` for vCPU 3.
pub fn guest_policy(name: &str) -> String {
    format!(
        "<!-- as libvirt writes them -->\n<domain type='xen'>\n  <name>{name}</name>\n  \
         <vcpu placement='static' cpuset='0-1' current='2'>4</vcpu>\n  \
         <cputune>\n    <vcpupin vcpu='3' cpuset='3'/>\n  </cputune>\n</domain>\n"
    )
}

/// The maps the guest policy gives vCPUs 0-3.
pub const PLACED: [&str; 4] = ["0-1", "0-1", "0-1", "3"];

/// A fresh scratch directory.
pub fn scratch(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xenvcpu-agent-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A policy directory holding these files.
pub fn policy_dir(files: &[(&str, &str)]) -> PathBuf {
    let dir = scratch("policy");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

impl Fixture {
    /// The lab guest.
    pub fn guest(&self) -> Domain {
        self.host.domain_by_name(&self.guest).unwrap()
    }

    /// The hard affinity of every vCPU of `dom`.
    pub fn maps(&self, dom: &Domain) -> Vec<String> {
        dom.vcpus().unwrap().iter().map(|v| v.hard.to_string()).collect()
    }

    /// Waits until `ok` holds (90 s at most).
    pub fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `xl vcpu-set` and wait for the guest to follow.
    pub fn vcpu_set(&self, count: u32) {
        self.xl.vcpu_set(&self.guest, count);
        self.guest().wait_for_vcpus(&VcpuSet::all(count), self.follow).unwrap();
    }

    /// Runs `check` and then puts the guest back (2 vCPUs online, all on every CPU),
    /// failing or not.
    pub fn with_guest_restored(&self, check: impl FnOnce()) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
        self.xl.vcpu_set(&self.guest, 2);
        let dom = self.guest();
        let _ = dom.wait_for_vcpus(&VcpuSet::all(2), self.follow);
        let all = xenvcpu::cpumap::CpuMap::all(self.host.info().unwrap().nr_cpus());
        for v in 0..dom.max_vcpus() {
            dom.set_affinity(VcpuId(v), &AffinityRequest::hard(&all).forced()).unwrap();
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A reconcile as the checks look at it: cause, domain name, writes, time from the trigger.
pub type Reconcile = (Cause, String, usize, Duration);

/// The events reported: each as text, and as a [`Reconcile`] when it is one.
type Events = Arc<Mutex<Vec<(String, Option<Reconcile>)>>>;

/// An agent running in a thread, and the events it reported.
pub struct Running {
    control: Arc<Control>,
    events: Events,
    thread: Option<std::thread::JoinHandle<xenvcpu::Result<()>>>,
}

impl Running {
    /// Starts `agent`.
    pub fn start(mut agent: Agent) -> Running {
        let control = Arc::new(Control::new());
        let events = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (control, events) = (control.clone(), events.clone());
            std::thread::spawn(move || {
                agent.run(&control, |e: Event| {
                    let detail = match &e {
                        Event::Reconciled { cause, name, report } => {
                            Some((*cause, name.clone(), report.writes(), report.took))
                        }
                        _ => None,
                    };
                    events.lock().unwrap().push((e.to_string(), detail));
                })
            })
        };
        Running { control, events, thread: Some(thread) }
    }

    /// The events so far, as text.
    pub fn texts(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().map(|e| e.0.clone()).collect()
    }

    /// The reconciles so far: cause, domain name, writes, time from the trigger.
    pub fn reconciles(&self) -> Vec<Reconcile> {
        self.events.lock().unwrap().iter().filter_map(|e| e.1.clone()).collect()
    }

    /// Waits for an event whose text contains `needle`.
    pub fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !self.texts().iter().any(|t| t.contains(needle)) {
            assert!(Instant::now() < deadline, "no event with {needle:?}: {:#?}", self.texts());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the agent has made `n` reconciles for availability changes: it read
    /// the change (a change undone before the agent reads it is not one it sees).
    pub fn wait_for_availability(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.reconciles().iter().filter(|r| r.0 == Cause::Availability).count() < n {
            assert!(Instant::now() < deadline, "no availability reconcile #{n}: {:#?}", self.texts());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks for a reload of the policy directory.
    pub fn reload(&self) {
        self.control.reload();
    }

    /// Stops the agent; its run must end cleanly.
    pub fn stop(mut self) -> Vec<String> {
        self.control.stop();
        self.thread.take().unwrap().join().unwrap().expect("the agent's run ends cleanly");
        self.texts()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An agent over the fixture's host with the policies of `dir`.
pub fn agent(f: &Fixture, dir: &Path, interval: Option<Duration>) -> Agent {
    let mut agent = Agent::new(f.host.clone(), interval);
    let loaded = agent.load_dir(dir).unwrap();
    assert!(!loaded.policies.is_empty() || !loaded.problems.is_empty(), "{}: no policy", dir.display());
    agent
}

// ---- the checks -----------------------------------------------------------------------------

/// The first pass places all four vCPUs, the two offline ones included; `xl vcpu-set`
/// then brings vCPUs 2-3 up already on their policy: the very first read after the guest
/// follows shows them placed.
pub fn places_offline_vcpus_so_hotplug_by_xl_comes_up_placed(f: &Fixture) {
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let running = Running::start(agent(f, &dir, None));
        let dom = f.guest();
        f.wait_until("the first pass", || f.maps(&dom) == PLACED);
        // The pins land before the agent reports them: wait for its report too.
        running.wait_for("start: ");
        assert_eq!(dom.online_vcpus().unwrap(), VcpuSet::all(2), "vCPUs 2-3 were placed while offline");
        let start = running.reconciles();
        assert!(matches!(start.first(), Some((Cause::Start, _, 4, _))), "4 writes at start: {start:?}");

        f.vcpu_set(4);
        // The very first listing by the other tool shows them online and placed.
        let listed = f.xl.vcpu_list(&f.guest);
        let hard: Vec<&str> = listed.iter().map(|(_, hard)| hard.as_str()).collect();
        assert_eq!(hard, PLACED, "{listed:?}");
        assert!(listed.iter().all(|(state, _)| !state.ends_with('p')), "all four online: {listed:?}");
        assert_eq!(f.maps(&dom), PLACED, "on the policy as soon as they are online");
        running.stop();
    });
}

/// `xl vcpu-set 2` then `4`: vCPU 3 loses its `<vcpupin>` as it goes offline and is
/// re-pinned to `<vcpu cpuset>`, which it keeps when it returns (libvirt's rule).
pub fn unplug_drops_the_vcpupin_and_the_vcpu_returns_on_the_cpuset(f: &Fixture) {
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let running = Running::start(agent(f, &dir, None));
        let dom = f.guest();
        f.wait_until("the first pass", || f.maps(&dom) == PLACED);
        f.vcpu_set(4);
        running.wait_for_availability(1);
        f.vcpu_set(2);
        f.wait_until("vCPU 3 re-pinned to the cpuset", || f.maps(&dom)[3] == "0-1");
        running.wait_for("<vcpupin> dropped for 3");
        f.vcpu_set(4);
        assert_eq!(f.maps(&dom), ["0-1"; 4], "vCPU 3 came back on <vcpu cpuset>");
        running.stop();
    });
}

/// A guest created while the agent runs is placed on its introduction; the time from the
/// introduction event to its last pin is reported.
pub fn a_guest_created_while_running_is_placed_on_introduction(f: &Fixture) {
    let name = "agentsecond";
    let second = format!("<domain><name>{name}</name><vcpu cpuset='2'>4</vcpu></domain>");
    let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest)), ("second.xml", &second)]);
    f.with_guest_restored(|| {
        let running = Running::start(agent(f, &dir, None));
        f.wait_until("the first pass", || f.maps(&f.guest()) == PLACED);
        let created = Instant::now();
        let domid = f.xl.create(name);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let dom = f.host.domain(domid).unwrap();
            f.wait_until("the new guest placed", || f.maps(&dom) == ["2"; 4]);
            let placed = created.elapsed();
            running.wait_for("introduced: ");
            let reconciles = running.reconciles();
            let (_, _, writes, took) = reconciles
                .iter()
                .find(|r| r.0 == Cause::Introduced && r.1 == name)
                .unwrap_or_else(|| panic!("no introduction reconcile: {reconciles:?}"))
                .clone();
            assert_eq!(writes, 4, "every vCPU of the new guest pinned");
            // Past libtest's capture (written to the stream, not through eprintln!), so that
            // the lab log shows the figure of a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "agent: {name} introduction event to last pin: {:.1} ms (xl create to placed as seen: {:.1} ms)",
                took.as_secs_f64() * 1e3,
                placed.as_secs_f64() * 1e3
            );
            // The first guest was not touched again.
            assert!(reconciles.iter().all(|r| r.1 != f.guest || r.0 == Cause::Start), "{reconciles:?}");
        }));
        f.xl.destroy(name);
        running.wait_for(&format!("released: domain {domid} ({name})"));
        let texts = running.stop();
        // Its nodes vanishing on the way out is no hot-unplug.
        assert!(!texts.iter().any(|t| t.contains(name) && t.contains("went offline")), "{texts:#?}");
        if let Err(p) = outcome {
            std::panic::resume_unwind(p)
        }
    });
}

/// `xl vcpu-pin` drift is reported by the periodic check and left alone; with enforce it
/// is repaired.
pub fn drift_is_reported_and_repaired_only_when_enforcing(f: &Fixture) {
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let dom = f.guest();
        let running = Running::start(agent(f, &dir, Some(Duration::from_millis(500))));
        f.wait_until("the first pass", || f.maps(&dom) == PLACED);
        f.xl.vcpu_pin(&f.guest, 2, "3");
        running.wait_for("drift: vCPU 2 is on 3, policy 0-1");
        assert_eq!(f.maps(&dom)[2], "3", "reported, not repaired");
        running.stop();

        let mut enforcing = agent(f, &dir, Some(Duration::from_millis(500)));
        enforcing.set_enforce(true);
        let running = Running::start(enforcing);
        f.wait_until("the start pass", || f.maps(&dom) == PLACED);
        f.xl.vcpu_pin(&f.guest, 1, "2");
        f.wait_until("the repair", || f.maps(&dom) == PLACED);
        let texts = running.stop();
        assert!(
            texts.iter().any(|t| t.starts_with("periodic:") && t.contains("re-pinned vCPU 1 2 -> 0-1")),
            "{texts:#?}"
        );
    });
}

/// A restarted agent (same state directory) writes nothing: not the pins that are right,
/// nor the `<vcpupin>` an unplug dropped.
pub fn a_restarted_agent_repins_nothing(f: &Fixture) {
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let state = scratch("state");
        let dom = f.guest();
        let mut first = agent(f, &dir, None);
        first.set_state_dir(&state);
        let running = Running::start(first);
        f.wait_until("the first pass", || f.maps(&dom) == PLACED);
        f.vcpu_set(4);
        running.wait_for_availability(1);
        f.vcpu_set(2);
        f.wait_until("the unplug rule", || f.maps(&dom)[3] == "0-1");
        running.stop(); // killed and restarted

        let mut second = agent(f, &dir, None);
        second.set_state_dir(&state);
        let mut events = Vec::new();
        f.counter.take();
        let summary: Summary = second.reconcile_all(&mut |e| events.push(e.to_string())).unwrap();
        assert_eq!((summary.domains, summary.writes, summary.failed), (1, 0, 0), "{events:#?}");
        let calls = f.counter.take();
        assert!(calls.get("get_affinity(hard)").is_some_and(|&n| n >= 4), "it read every vCPU's map: {calls:?}");
        assert!(!calls.keys().any(|k| k.starts_with("set_affinity")), "read hypercalls only: {calls:?}");
        assert_eq!(f.maps(&dom), ["0-1"; 4], "the dropped pin stayed dropped");

        // Without the state, the restart would put vCPU 3 back on its <vcpupin>.
        let mut stateless = agent(f, &dir, None);
        stateless.set_dry_run(true);
        let mut events = Vec::new();
        stateless.reconcile_all(&mut |e| events.push(e.to_string())).unwrap();
        assert!(events.iter().any(|e| e.contains("would re-pin vCPU 3 0-1 -> 3")), "{events:#?}");
    });
}

/// A file that does not parse is reported with its line and column and skipped; the good
/// one next to it applies.
pub fn a_broken_policy_file_does_not_stop_the_good_one(f: &Fixture) {
    f.with_guest_restored(|| {
        let broken = "<domain>\n  <name>nobody</name>\n  <vcpu>2</vcpu>\n  <cputune>\n</domain>\n";
        let dir = policy_dir(&[("a-broken.xml", broken), ("guest.xml", &guest_policy(&f.guest))]);
        let mut agent = agent(f, &dir, None);
        let mut events = Vec::new();
        let summary = agent.reconcile_all(&mut |e| events.push(e.to_string())).unwrap();
        assert_eq!((summary.domains, summary.failed), (1, 1), "{events:#?}");
        assert!(
            events.iter().any(|e| e.contains("a-broken.xml") && e.contains("line 5, column")),
            "reported with its position: {events:#?}"
        );
        assert_eq!(f.maps(&f.guest()), PLACED);
    });
}

/// A policy for another vCPU count is refused, naming both numbers; nothing is written.
pub fn a_policy_that_does_not_fit_is_refused(f: &Fixture) {
    let eight = format!("<domain><name>{}</name><vcpu cpuset='0'>8</vcpu></domain>", f.guest);
    let dir = policy_dir(&[("guest.xml", &eight)]);
    let mut agent = agent(f, &dir, None);
    let mut events = Vec::new();
    let summary = agent.reconcile_all(&mut |e| events.push(e.to_string())).unwrap();
    assert_eq!((summary.failed, summary.writes), (1, 0), "{events:#?}");
    assert!(events.iter().any(|e| e.contains("for 8 vCPUs") && e.contains("has 4")), "{events:#?}");
    assert!(f.maps(&f.guest()).iter().all(|m| m != "0"), "nothing written");
}

/// The uuid wins: a file naming the guest with another uuid is not applied (a warning
/// says why); a file with the guest's uuid under another name is.
pub fn the_uuid_wins_over_the_name(f: &Fixture) {
    f.with_guest_restored(|| {
        let uuid = xenvcpu::Uuid(f.guest().info().uuid);
        let other = "00000000-1111-2222-3333-444444444444";
        let named = format!("<domain><name>{}</name><uuid>{other}</uuid><vcpu cpuset='2'>4</vcpu></domain>", f.guest);
        let dir = policy_dir(&[("named.xml", &named)]);
        let mut events = Vec::new();
        let summary = agent(f, &dir, None).reconcile_all(&mut |e| events.push(e.to_string())).unwrap();
        assert_eq!(summary.domains, 0, "{events:#?}");
        assert!(events.iter().any(|e| e.contains("the uuid wins")), "{events:#?}");

        let renamed = format!("<domain><name>renamed</name><uuid>{uuid}</uuid><vcpu cpuset='2'>4</vcpu></domain>");
        let dir = policy_dir(&[("renamed.xml", &renamed)]);
        let summary = agent(f, &dir, None).reconcile_all(&mut |e| events.push(e.to_string())).unwrap();
        assert_eq!((summary.domains, summary.writes), (1, 4), "{events:#?}");
        assert_eq!(f.maps(&f.guest()), ["2"; 4]);
    });
}

/// A reload (SIGHUP for the command) picks up an edited policy and places the domain again.
pub fn a_reload_applies_an_edited_policy(f: &Fixture) {
    f.with_guest_restored(|| {
        let dir = policy_dir(&[("guest.xml", &guest_policy(&f.guest))]);
        let running = Running::start(agent(f, &dir, None));
        let dom = f.guest();
        f.wait_until("the first pass", || f.maps(&dom) == PLACED);
        let edited = format!("<domain><name>{}</name><vcpu cpuset='1-2'>4</vcpu></domain>", f.guest);
        std::fs::write(dir.join("guest.xml"), edited).unwrap();
        running.reload();
        f.wait_until("the edited policy", || f.maps(&dom) == ["1-2"; 4]);
        running.stop();
    });
}

/// Instantiates the suite: `agent_suite!(fixture_fn)` or `agent_suite!(fixture_fn,
/// ignore = "reason")`.
#[macro_export]
macro_rules! agent_suite {
    ($fixture:path $(, $attr:meta)?) => {
        $crate::agent_suite!(@tests $fixture, [$($attr)?],
            places_offline_vcpus_so_hotplug_by_xl_comes_up_placed,
            unplug_drops_the_vcpupin_and_the_vcpu_returns_on_the_cpuset,
            a_guest_created_while_running_is_placed_on_introduction,
            drift_is_reported_and_repaired_only_when_enforcing,
            a_restarted_agent_repins_nothing,
            a_broken_policy_file_does_not_stop_the_good_one,
            a_policy_that_does_not_fit_is_refused,
            the_uuid_wins_over_the_name,
            a_reload_applies_an_edited_policy,
        );
    };
    (@tests $fixture:path, $attrs:tt, $($name:ident),* $(,)?) => {
        $( $crate::agent_suite!(@one $fixture, $attrs, $name); )*

        /// The list above names every check the suite defines (runs on the host).
        #[test]
        fn every_agent_check_is_listed() {
            let mut listed = vec![$(stringify!($name)),*];
            listed.sort_unstable();
            assert_eq!(listed, agent_checks::defined_tests(), "an agent check is missing from agent_suite!");
        }
    };
    (@one $fixture:path, [$($attr:meta)?], $name:ident) => {
        #[test]
        $(#[$attr])?
        fn $name() {
            agent_checks::$name(&$fixture());
        }
    };
}

/// Every check this file defines.
pub fn defined_tests() -> Vec<&'static str> {
    suite_guard::defined_tests(include_str!("mod.rs"))
}
