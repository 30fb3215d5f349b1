//! Lab tests of the xenstore layer against the real xenstored of a Xen 4.17 dom0.
//!
//! Every test is ignored outside the lab; `tests/lab/lab.sh test` runs them with
//! `--ignored` inside dom0, where `XENVCPU_LAB=1` and `XENVCPU_LAB_GUEST_DOMID` (a running
//! PV guest "labguest") are set. They run the same conformance checks the host tests run
//! on the simulated store (`tests/xenstore_sim.rs`), each with two [`XsClient`]
//! connections, plus checks that need the real system: the endpoint, the guest's nodes,
//! libxenstore's command-line tools, the xenbus device.
//!
//! They only write below `/xenvcpu-test` and remove what they wrote; the guest's nodes are
//! only read.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xenvcpu::xenstore::{transact, Transaction, TxId, XenStore, XsClient};

mod xenstore_checks;

use xenstore_checks::conformance;

const NONE: TxId = TxId::NONE;

/// Panics unless running inside the lab.
fn lab() {
    assert_eq!(
        std::env::var("XENVCPU_LAB").as_deref(),
        Ok("1"),
        "this test needs the Xen lab (a dom0 with xenstored): run `tests/lab/lab.sh test`, \
         which sets XENVCPU_LAB=1; outside the lab it is #[ignore]d"
    );
}

fn client() -> XsClient {
    XsClient::open().unwrap_or_else(|e| panic!("{e}"))
}

fn guest_domid() -> u32 {
    let raw = std::env::var("XENVCPU_LAB_GUEST_DOMID")
        .expect("XENVCPU_LAB_GUEST_DOMID is set by the lab when the guest runs");
    raw.parse().unwrap_or_else(|_| panic!("XENVCPU_LAB_GUEST_DOMID={raw:?} is not a domid"))
}

fn conform_with(name: &str, a: &dyn XenStore, b: &dyn XenStore) {
    if let Err(d) = conformance::run(name, a, b) {
        panic!("{d}");
    }
}

fn conform(name: &str) {
    lab();
    let a = client();
    let b = client();
    conform_with(name, &a, &b);
}

xenstore_checks!(conform, ignore = "lab: needs a real xenstored (run tests/lab/lab.sh test)");

#[test]
#[ignore = "lab: needs a real xenstored (run tests/lab/lab.sh test)"]
fn open_connects_to_the_xenstored_socket() {
    lab();
    let xs = client();
    let expected = std::env::var_os("XENSTORED_PATH")
        .filter(|p| !p.is_empty())
        .map_or_else(|| "/run/xenstored/socket".into(), std::path::PathBuf::from);
    assert_eq!(xs.endpoint(), expected);
    assert_eq!(xs.read_string(NONE, "/local/domain/0/name").unwrap(), "Domain-0");
}

#[test]
#[ignore = "lab: needs a real xenstored (run tests/lab/lab.sh test)"]
fn the_guest_nodes_are_readable() {
    lab();
    let xs = client();
    let domid = guest_domid();
    let dompath = xs.get_domain_path(domid).unwrap();
    assert_eq!(dompath, format!("/local/domain/{domid}"));
    assert_eq!(xs.read_string(NONE, &format!("{dompath}/name")).unwrap(), "labguest");
    // Read the availability nodes in a transaction (as the availability logic will) and
    // abort it: nothing is changed.
    let states = transact(&xs, 3, |tx| {
        let mut cpus = tx.directory(&format!("{dompath}/cpu"))?;
        cpus.sort_by_key(|c| c.parse::<u32>().unwrap_or(u32::MAX));
        cpus.iter()
            .map(|c| tx.read_string(&format!("{dompath}/cpu/{c}/availability")))
            .collect::<Result<Vec<_>, _>>()
            .map(|states| (cpus.clone(), states))
    })
    .unwrap();
    assert_eq!(states.0, ["0", "1", "2", "3"], "maxvcpus=4");
    for state in &states.1 {
        assert!(state == "online" || state == "offline", "{state:?}");
    }
}

#[test]
#[ignore = "lab: needs a real xenstored (run tests/lab/lab.sh test)"]
fn libxenstore_tools_see_our_writes_and_we_see_theirs() {
    lab();
    let xs = client();
    let base = "/xenvcpu-test/tools";
    let _ = xs.rm(NONE, base);
    xs.write(NONE, &format!("{base}/ours"), b"from-xsclient").unwrap();
    let out =
        Command::new("xenstore-read").arg(format!("{base}/ours")).output().expect("xenstore-read runs in the lab");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "from-xsclient");

    let status = Command::new("xenstore-write")
        .args([&format!("{base}/theirs"), "from-libxenstore"])
        .status()
        .expect("xenstore-write runs in the lab");
    assert!(status.success());
    assert_eq!(xs.read_string(NONE, &format!("{base}/theirs")).unwrap(), "from-libxenstore");
    let mut listed = xs.directory(NONE, base).unwrap();
    listed.sort();
    assert_eq!(listed, ["ours", "theirs"]);
    xs.rm(NONE, base).unwrap();
}

#[test]
#[ignore = "lab: needs a real xenstored (run tests/lab/lab.sh test)"]
fn a_watch_fires_for_a_write_by_libxenstore() {
    lab();
    let xs = client();
    let base = "/xenvcpu-test/tool-watch";
    let _ = xs.rm(NONE, base);
    xs.mkdir(NONE, base).unwrap();
    xs.watch(base, "tool").unwrap();
    let initial = xs.next_event(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((initial.path.as_str(), initial.token.as_str()), (base, "tool"));
    let status = Command::new("xenstore-write")
        .args([&format!("{base}/x"), "1"])
        .status()
        .expect("xenstore-write runs in the lab");
    assert!(status.success());
    let ev = xs.next_event(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(ev.path, format!("{base}/x"));
    xs.unwatch(base, "tool").unwrap();
    xs.rm(NONE, base).unwrap();
}

/// The xenbus device (used when xenstored runs in a stub domain) carries the same
/// protocol through the kernel; dom0 has it too.
#[test]
#[ignore = "lab: needs a real xenstored (run tests/lab/lab.sh test)"]
fn the_xenbus_device_speaks_the_same_protocol() {
    lab();
    let device = ["/dev/xen/xenbus", "/proc/xen/xenbus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("dom0 has /dev/xen/xenbus or /proc/xen/xenbus");
    let mut dev = XsClient::open_path(device).unwrap_or_else(|e| panic!("{e}"));
    dev.set_timeout(Duration::from_secs(10));
    let sock = client();
    assert_eq!(dev.payload_max(), 4080);
    for check in [
        "basic_operations",
        "missing_paths",
        "get_domain_path",
        "transaction_isolation",
        "conflict_is_eagain",
        "transact_retries_conflicts",
    ] {
        conform_with(check, &dev, &sock);
    }

    // Watches go through the kernel's own watch list, but events look the same.
    let base = "/xenvcpu-test/xenbus-watch";
    let _ = sock.rm(NONE, base);
    sock.mkdir(NONE, base).unwrap();
    dev.watch(base, "dev").unwrap();
    let initial = dev.next_event(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((initial.path.as_str(), initial.token.as_str()), (base, "dev"));
    sock.write(NONE, &format!("{base}/x"), b"1").unwrap();
    let ev = dev.next_event(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(ev.path, format!("{base}/x"));
    dev.unwatch(base, "dev").unwrap();

    // A transaction opened on the device, aborted by dropping the guard.
    {
        let tx = Transaction::start(&dev).unwrap();
        tx.write(&format!("{base}/dropped"), "x").unwrap();
    }
    assert!(!sock.exists(NONE, &format!("{base}/dropped")).unwrap());
    sock.rm(NONE, base).unwrap();
}
