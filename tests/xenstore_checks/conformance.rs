//! Behaviour checks every [`XenStore`] backend must pass: one suite, two backends.
//!
//! Each check describes one piece of xenstored's behaviour. The host tests
//! (`tests/xenstore_sim.rs`) run every check on `SimStore`; the lab tests
//! (`tests/lab_xenstore.rs`) run the same checks on `XsClient` against the real xenstored
//! of a Xen dom0. When they disagree, xenstored is right and
//! the simulation is fixed.
//!
//! A check gets two connections to the same store (`a` and `b`, for conflicts and watch
//! events caused by "someone else") and works only below its own scratch path,
//! `/xenvcpu-test/<check name>`, which [`run`] removes before and after. Checks never
//! touch anything else, so they are safe on a live dom0.
//!
//! ```text
//! let a = SimStore::new();
//! let b = a.connect();
//! for check in conformance::CHECKS {
//!     conformance::run(check.name, &a, &b).unwrap();
//! }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use xenvcpu::xenstore::{transact, Transaction, TxId, WatchEvent, XenStore, XsErrno, XsError, XsOp, PAYLOAD_MAX};

/// Where checks put their scratch nodes: `/xenvcpu-test/<check name>`.
pub const SCRATCH_ROOT: &str = "/xenvcpu-test";

/// How long a check waits for an event that must come.
const EVENT_WAIT: Duration = Duration::from_secs(5);
/// How long a check waits to be sure an event does not come.
const QUIET_WAIT: Duration = Duration::from_millis(400);

/// A check that failed: what the backend did differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The check's name.
    pub check: String,
    /// What differed from xenstored's behaviour.
    pub detail: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xenstore conformance check {}: {}", self.check, self.detail)
    }
}

impl std::error::Error for Divergence {}

/// The signature of a check: two connections to one store, and the scratch path.
pub type CheckFn = fn(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Result<(), String>;

/// One named check.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Its name (also the last component of its scratch path).
    pub name: &'static str,
    /// What it establishes.
    pub about: &'static str,
    /// The check itself; prefer [`run`], which prepares and removes the scratch path.
    pub check: CheckFn,
}

/// Every check, in a sensible order.
pub const CHECKS: &[Check] = &[
    Check {
        name: "basic_operations",
        about: "read/write/directory/mkdir/rm round trips; writes create parents",
        check: basic_operations,
    },
    Check {
        name: "values_are_bytes",
        about: "empty and binary values round-trip; read_string refuses non-UTF-8",
        check: values_are_bytes,
    },
    Check {
        name: "missing_paths",
        about: "ENOENT for missing nodes; rm of a missing node succeeds iff its parent exists",
        check: missing_paths,
    },
    Check {
        name: "refused_before_sending",
        about: "relative paths and NUL bytes are refused locally; the connection stays usable",
        check: refused_before_sending,
    },
    Check {
        name: "invalid_names_are_einval",
        about: "trailing slash, double slash and bad characters are EINVAL",
        check: invalid_names_are_einval,
    },
    Check {
        name: "payload_limit",
        about: "payloads up to 4096 bytes pass, one more byte is refused before sending",
        check: payload_limit,
    },
    Check {
        name: "get_domain_path",
        about: "the home path of a domain is /local/domain/<domid>",
        check: get_domain_path,
    },
    Check {
        name: "transaction_isolation",
        about: "a transaction's writes are invisible to others until the commit",
        check: transaction_isolation,
    },
    Check {
        name: "conflict_is_eagain",
        about: "a node read and written in a transaction and changed by another client: EAGAIN",
        check: conflict_is_eagain,
    },
    Check {
        name: "blind_write_conflicts",
        about: "a node only written in a transaction and changed by another client: EAGAIN",
        check: blind_write_conflicts,
    },
    Check {
        name: "directory_listing_conflicts",
        about: "a child added to a directory the transaction listed: EAGAIN",
        check: directory_listing_conflicts,
    },
    Check {
        name: "first_access_sees_newer_value",
        about: "a change before the transaction first touches a node is seen and no conflict",
        check: first_access_sees_newer_value,
    },
    Check {
        name: "unrelated_change_does_not_conflict",
        about: "changes to nodes the transaction never touched don't make it fail",
        check: unrelated_change_does_not_conflict,
    },
    Check {
        name: "transact_retries_conflicts",
        about: "transact redoes a conflicting attempt and then succeeds",
        check: transact_retries_conflicts,
    },
    Check {
        name: "transact_gives_up",
        about: "transact stops after max_attempts conflicts and says how many",
        check: transact_gives_up,
    },
    Check {
        name: "transact_aborts_on_error",
        about: "an error inside transact aborts: nothing is written, no retry",
        check: transact_aborts_on_error,
    },
    Check {
        name: "abort_and_drop_leave_nothing",
        about: "aborted and dropped transactions leave nothing; unknown ids are ENOENT",
        check: abort_and_drop_leave_nothing,
    },
    Check {
        name: "watch_fires",
        about: "a watch fires once when set, then for changes at or below its path only",
        check: watch_fires,
    },
    Check {
        name: "unwatch_stops_events",
        about: "no events after unwatch; unknown watches are ENOENT, duplicates EEXIST",
        check: unwatch_stops_events,
    },
    Check {
        name: "special_watch_paths",
        about: "watches on @releaseDomain / @introduceDomain are accepted and fire initially",
        check: special_watch_paths,
    },
    Check {
        name: "rm_fires_watches",
        about: "rm fires watches at or above the removed node, and exact watches below it",
        check: rm_fires_watches,
    },
    Check {
        name: "transaction_events_at_commit",
        about: "transaction changes fire at commit, once per node; aborted ones never",
        check: transaction_events_at_commit,
    },
    Check {
        name: "concurrent_requests",
        about: "4 threads x 50 requests on one connection all get their own answers",
        check: concurrent_requests,
    },
    Check {
        name: "large_directory",
        about: "a child list longer than one reply (E2BIG) is still listed whole",
        check: large_directory,
    },
];

/// Runs the check called `name` on connections `a` and `b` of one store: removes its
/// scratch path, runs it, and removes the scratch path again (also when it failed).
///
/// # Errors
/// A [`Divergence`] saying what differed (or that there is no such check, or that the
/// scratch path could not be removed).
pub fn run(name: &str, a: &dyn XenStore, b: &dyn XenStore) -> Result<(), Divergence> {
    let diverged = |detail: String| Divergence { check: name.to_owned(), detail };
    let check = CHECKS.iter().find(|c| c.name == name).ok_or_else(|| diverged("no such check".into()))?;
    let base = format!("{SCRATCH_ROOT}/{name}");
    clean(a, &base).map_err(|e| diverged(format!("preparing {base}: {e}")))?;
    // Events left over from earlier checks (or their cleanup) are not this check's.
    for store in [a, b] {
        while let Ok(Some(_)) = store.next_event(Duration::ZERO) {}
    }
    let outcome = (check.check)(a, b, &base);
    let cleaned = clean(a, &base);
    outcome.map_err(&diverged)?;
    cleaned.map_err(|e| diverged(format!("removing {base}: {e}")))
}

fn clean(store: &dyn XenStore, base: &str) -> Result<(), XsError> {
    match store.rm(TxId::NONE, base) {
        Err(e) if e.is_not_found() => Ok(()), // not even the scratch root exists
        other => other,
    }
}

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Unwraps a result that must succeed.
fn ok<T>(result: Result<T, XsError>, what: &str) -> Result<T, String> {
    result.map_err(|e| format!("{what}: unexpected error: {e}"))
}

/// Checks that `result` is xenstored's `errno` for `op` on `path`.
fn refused<T: fmt::Debug>(
    result: Result<T, XsError>,
    op: XsOp,
    path: Option<&str>,
    errno: XsErrno,
    what: &str,
) -> Outcome {
    match result {
        Err(XsError::Errno { op: o, path: p, errno: e }) if o == op && p.as_deref() == path && e == errno => Ok(()),
        other => Err(format!("{what}: expected {op} {path:?} to fail with {}, got {other:?}", errno.name())),
    }
}

fn read_str(store: &dyn XenStore, tx: TxId, path: &str) -> Result<String, String> {
    ok(store.read_string(tx, path), &format!("read {path}"))
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn event_of(ev: &WatchEvent) -> (String, String) {
    (ev.path.clone(), ev.token.clone())
}

fn expect_event(store: &dyn XenStore, path: &str, token: &str, what: &str) -> Outcome {
    match ok(store.next_event(EVENT_WAIT), what)? {
        Some(ev) if ev.path == path && ev.token == token => Ok(()),
        Some(ev) => Err(format!("{what}: expected event ({path}, {token}), got {:?}", event_of(&ev))),
        None => Err(format!("{what}: no event ({path}, {token}) within {EVENT_WAIT:?}")),
    }
}

fn expect_quiet(store: &dyn XenStore, what: &str) -> Outcome {
    match ok(store.next_event(QUIET_WAIT), what)? {
        None => Ok(()),
        Some(ev) => Err(format!("{what}: unexpected event {:?}", event_of(&ev))),
    }
}

/// Collects events until none arrives for [`QUIET_WAIT`] (at most 64).
fn drain(store: &dyn XenStore, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    while out.len() < 64 {
        match ok(store.next_event(QUIET_WAIT), what)? {
            Some(ev) => out.push(event_of(&ev)),
            None => break,
        }
    }
    Ok(out)
}

fn pair(path: &str, token: &str) -> (String, String) {
    (path.to_owned(), token.to_owned())
}

fn basic_operations(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    ok(a.mkdir(none, base), "mkdir base")?;
    ensure!(ok(a.read(none, base), "read base")?.is_empty(), "a new directory has an empty value");
    ensure!(ok(a.directory(none, base), "directory base")?.is_empty(), "a new directory has no children");

    let k = format!("{base}/k");
    ok(a.write(none, &k, b"v1"), "write k")?;
    ensure!(read_str(a, none, &k)? == "v1", "read back v1");
    ensure!(read_str(b, none, &k)? == "v1", "the other connection sees v1");
    ok(a.write(none, &k, b"v2"), "overwrite k")?;
    ensure!(read_str(b, none, &k)? == "v2", "overwritten value v2");
    ok(a.mkdir(none, &k), "mkdir of an existing node")?;
    ensure!(read_str(a, none, &k)? == "v2", "mkdir of an existing node keeps its value");
    ensure!(ok(a.directory(none, &k), "directory k")?.is_empty(), "a leaf lists no children");

    let deep = format!("{base}/p/q/r");
    ok(a.write(none, &deep, b"x"), "write p/q/r")?;
    for parent in [format!("{base}/p"), format!("{base}/p/q")] {
        ensure!(
            ok(a.read(none, &parent), "read created parent")?.is_empty(),
            "write created {parent} with an empty value"
        );
    }
    ensure!(ok(a.directory(none, &format!("{base}/p")), "directory p")? == ["q"], "p lists q");
    ok(a.mkdir(none, &format!("{base}/m/n")), "mkdir m/n")?;
    ensure!(ok(a.directory(none, &format!("{base}/m")), "directory m")? == ["n"], "mkdir created m with child n");
    ensure!(sorted(ok(b.directory(none, base), "directory base")?) == ["k", "m", "p"], "base lists k, m, p");

    ok(a.rm(none, &format!("{base}/p")), "rm p")?;
    refused(a.read(none, &deep), XsOp::Read, Some(&deep), XsErrno::ENOENT, "rm removes the whole subtree")?;
    ensure!(!ok(a.exists(none, &format!("{base}/p")), "exists p")?, "p is gone");
    ensure!(ok(a.exists(none, &k), "exists k")?, "k is still there");
    ensure!(sorted(ok(a.directory(none, base), "directory base")?) == ["k", "m"], "base lists k, m after rm");
    Ok(())
}

fn values_are_bytes(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let empty = format!("{base}/empty");
    ok(a.write(none, &empty, b""), "write empty")?;
    ensure!(ok(b.read(none, &empty), "read empty")?.is_empty(), "empty value");
    let bin = format!("{base}/bin");
    let value = [0u8, 0xff, b'a', 0, b'\n'];
    ok(a.write(none, &bin, &value), "write binary")?;
    ensure!(ok(b.read(none, &bin), "read binary")? == value, "binary value round-trips (NUL bytes included)");
    match b.read_string(none, &bin) {
        Err(XsError::NotUtf8 { path, .. }) if path == bin => Ok(()),
        other => Err(format!("read_string of a binary value: {other:?}")),
    }
}

fn missing_paths(a: &dyn XenStore, _b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    ok(a.mkdir(none, base), "mkdir base")?;
    let missing = format!("{base}/missing");
    refused(a.read(none, &missing), XsOp::Read, Some(&missing), XsErrno::ENOENT, "read")?;
    refused(a.directory(none, &missing), XsOp::Directory, Some(&missing), XsErrno::ENOENT, "directory")?;
    ensure!(!ok(a.exists(none, &missing), "exists")?, "exists is false");
    ok(a.rm(none, &missing), "rm of a missing node whose parent exists")?;
    let orphan = format!("{base}/missing/deeper");
    refused(
        a.rm(none, &orphan),
        XsOp::Rm,
        Some(&orphan),
        XsErrno::ENOENT,
        "rm of a missing node whose parent is missing",
    )?;
    ensure!(!ok(a.exists(none, &missing), "exists")?, "rm created nothing");
    Ok(())
}

fn refused_before_sending(a: &dyn XenStore, _b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let relative: [(XsOp, Result<(), XsError>); 7] = [
        (XsOp::Read, a.read(none, "relative/path").map(drop)),
        (XsOp::Write, a.write(none, "relative", b"x")),
        (XsOp::Directory, a.directory(none, "").map(drop)),
        (XsOp::Mkdir, a.mkdir(none, "cpu/0")),
        (XsOp::Rm, a.rm(none, "cpu")),
        (XsOp::Watch, a.watch("cpu", "t")),
        (XsOp::Unwatch, a.unwatch("cpu", "t")),
    ];
    for (op, result) in relative {
        ensure!(
            matches!(&result, Err(XsError::RelativePath { op: o, .. }) if *o == op),
            "{op} of a relative path: expected RelativePath, got {result:?}"
        );
    }
    let nul = format!("{base}/a\0b");
    let result = a.write(none, &nul, b"x");
    ensure!(matches!(result, Err(XsError::InvalidArgument { what: "path", .. })), "a NUL in a path: {result:?}");
    let result = a.watch(base, "to\0ken");
    ensure!(matches!(result, Err(XsError::InvalidArgument { what: "token", .. })), "a NUL in a token: {result:?}");
    let alive = format!("{base}/alive");
    ok(a.write(none, &alive, b"1"), "write after refusals")?;
    ensure!(read_str(a, none, &alive)? == "1", "connection still works");
    Ok(())
}

fn invalid_names_are_einval(a: &dyn XenStore, _b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    ok(a.mkdir(none, base), "mkdir base")?;
    for bad in [
        format!("{base}/trailing/"),
        format!("{base}//double"),
        format!("{base}/with space"),
        format!("{base}/dot.ted"),
    ] {
        refused(a.write(none, &bad, b"x"), XsOp::Write, Some(&bad), XsErrno::EINVAL, "write")?;
    }
    let bad = format!("{base}/trailing/");
    refused(a.read(none, &bad), XsOp::Read, Some(&bad), XsErrno::EINVAL, "read")?;
    ensure!(ok(a.directory(none, base), "directory")?.is_empty(), "nothing was created");
    Ok(())
}

fn payload_limit(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let path = format!("{base}/big");
    let fits = PAYLOAD_MAX - path.len() - 1;
    let too_big = vec![b'x'; fits + 1];
    match a.write(none, &path, &too_big) {
        Err(XsError::PayloadTooLarge { op, path: p, size, .. })
            if op == XsOp::Write && p.as_deref() == Some(path.as_str()) && size == PAYLOAD_MAX + 1 => {}
        other => return Err(format!("oversized write: expected PayloadTooLarge, got {other:?}")),
    }
    let long_path = format!("{base}/{}", "n".repeat(PAYLOAD_MAX));
    let result = a.read(none, &long_path);
    ensure!(matches!(result, Err(XsError::PayloadTooLarge { op: XsOp::Read, .. })), "oversized path: {result:?}");
    ensure!(!ok(b.exists(none, &path), "exists")?, "the refused write wrote nothing");
    let value = vec![b'y'; fits];
    ok(a.write(none, &path, &value), "write of exactly 4096 payload bytes")?;
    ensure!(ok(b.read(none, &path), "read back")? == value, "the largest value reads back whole");
    Ok(())
}

fn get_domain_path(a: &dyn XenStore, _b: &dyn XenStore, _base: &str) -> Outcome {
    for domid in [0, 7, 32000] {
        let path = ok(a.get_domain_path(domid), "get_domain_path")?;
        ensure!(path == format!("/local/domain/{domid}"), "domain {domid}: {path}");
    }
    Ok(())
}

fn transaction_isolation(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    ok(a.mkdir(none, base), "mkdir base")?;
    let new = format!("{base}/new");
    let tx = ok(Transaction::start(a), "start")?;
    ensure!(!tx.id().is_none(), "a transaction id is never 0");
    ok(tx.write(&new, "t"), "write in tx")?;
    ensure!(ok(tx.read_string(&new), "read in tx")? == "t", "the transaction sees its own write");
    ensure!(!ok(b.exists(none, &new), "exists (b)")?, "other connections don't see uncommitted writes");
    ensure!(
        !ok(a.exists(none, &new), "exists (a, no tx)")?,
        "the same connection outside the transaction doesn't either"
    );
    ok(tx.commit(), "commit")?;
    ensure!(read_str(b, none, &new)? == "t", "visible after commit");
    Ok(())
}

fn conflict_is_eagain(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let x = format!("{base}/x");
    ok(a.write(none, &x, b"0"), "write x")?;
    let tx = ok(Transaction::start(a), "start")?;
    ensure!(ok(tx.read_string(&x), "read in tx")? == "0", "tx reads 0");
    ok(tx.write(&x, "tx"), "write in tx")?;
    ok(b.write(none, &x, b"b"), "write by the other client")?;
    let result = tx.commit();
    ensure!(
        matches!(&result, Err(e) if e.is_again() && e.op() == Some(XsOp::TransactionEnd)),
        "commit after a conflicting write: expected EAGAIN, got {result:?}"
    );
    ensure!(read_str(a, none, &x)? == "b", "the failed transaction applied nothing");
    Ok(())
}

fn blind_write_conflicts(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let x = format!("{base}/x");
    ok(a.write(none, &x, b"0"), "write x")?;
    let tx = ok(Transaction::start(a), "start")?;
    ok(tx.write(&x, "tx"), "write in tx")?;
    ok(b.write(none, &x, b"b"), "write by the other client")?;
    let result = tx.commit();
    ensure!(matches!(&result, Err(e) if e.is_again()), "commit: expected EAGAIN, got {result:?}");
    ensure!(read_str(a, none, &x)? == "b", "nothing applied");
    Ok(())
}

fn directory_listing_conflicts(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let d = format!("{base}/d");
    let other = format!("{base}/other");
    ok(a.write(none, &format!("{d}/one"), b"1"), "write d/one")?;
    ok(a.write(none, &other, b"0"), "write other")?;
    let tx = ok(Transaction::start(a), "start")?;
    ensure!(ok(tx.directory(&d), "directory in tx")? == ["one"], "lists one");
    ok(tx.write(&other, "1"), "write other in tx")?;
    ok(b.write(none, &format!("{d}/two"), b"2"), "other client adds d/two")?;
    let result = tx.commit();
    ensure!(
        matches!(&result, Err(e) if e.is_again()),
        "commit after the listed directory changed: expected EAGAIN, got {result:?}"
    );
    ensure!(read_str(a, none, &other)? == "0", "nothing applied");
    Ok(())
}

fn first_access_sees_newer_value(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let x = format!("{base}/x");
    let y = format!("{base}/y");
    ok(a.write(none, &x, b"0"), "write x")?;
    ok(a.write(none, &y, b"0"), "write y")?;
    let tx = ok(Transaction::start(a), "start")?;
    ok(b.write(none, &x, b"1"), "other client writes x before the tx touches it")?;
    ensure!(ok(tx.read_string(&x), "read x in tx")? == "1", "the transaction sees the value as of its first access");
    ok(tx.write(&y, "from-tx"), "write y in tx")?;
    ok(tx.commit(), "commit (no conflict)")?;
    ensure!(read_str(b, none, &y)? == "from-tx", "committed");
    Ok(())
}

fn unrelated_change_does_not_conflict(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let [x, y, z] = ["x", "y", "z"].map(|n| format!("{base}/{n}"));
    for p in [&x, &y, &z] {
        ok(a.write(none, p, b"0"), "setup")?;
    }
    let tx = ok(Transaction::start(a), "start")?;
    ok(tx.read(&x), "read x in tx")?;
    ok(tx.write(&y, "1"), "write y in tx")?;
    ok(b.write(none, &z, b"1"), "other client writes z")?;
    ok(tx.commit(), "commit")?;
    ensure!(read_str(b, none, &y)? == "1", "committed");
    Ok(())
}

fn transact_retries_conflicts(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let counter = format!("{base}/counter");
    ok(a.write(none, &counter, b"0"), "write counter")?;
    let mut attempts = 0;
    let result = transact(a, 5, |tx| {
        attempts += 1;
        let value: u32 = tx.read_string(&counter)?.parse().unwrap_or(u32::MAX);
        if attempts == 1 {
            // Someone else increments in the middle of the first attempt.
            b.write(TxId::NONE, &counter, b"100")?;
        }
        tx.write(&counter, (value + 1).to_string())?;
        Ok(value)
    });
    ensure!(matches!(result, Ok(100)), "transact: expected Ok(100) (the second attempt read 100), got {result:?}");
    ensure!(attempts == 2, "expected 2 attempts, made {attempts}");
    ensure!(read_str(a, none, &counter)? == "101", "counter is 101");
    Ok(())
}

fn transact_gives_up(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let x = format!("{base}/x");
    ok(a.write(none, &x, b"0"), "write x")?;
    let mut attempts = 0;
    let result = transact(a, 3, |tx| {
        attempts += 1;
        tx.read(&x)?;
        b.write(TxId::NONE, &x, format!("b{attempts}").as_bytes())?;
        tx.write(&x, "tx")
    });
    match &result {
        Err(e @ XsError::RetriesExhausted { attempts: 3, .. }) if e.is_again() => {}
        other => return Err(format!("expected RetriesExhausted after 3, got {other:?}")),
    }
    ensure!(attempts == 3, "expected 3 attempts, made {attempts}");
    ensure!(read_str(a, none, &x)? == "b3", "no attempt applied anything");
    Ok(())
}

fn transact_aborts_on_error(a: &dyn XenStore, _b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    ok(a.mkdir(none, base), "mkdir base")?;
    let t = format!("{base}/t");
    let missing = format!("{base}/missing");
    let attempts = AtomicU32::new(0);
    let result = transact(a, 5, |tx| {
        attempts.fetch_add(1, Ordering::Relaxed);
        tx.write(&t, "x")?;
        tx.read(&missing)
    });
    ensure!(
        matches!(&result, Err(e) if e.is_not_found() && e.path() == Some(missing.as_str())),
        "expected the ENOENT of the read, got {result:?}"
    );
    ensure!(attempts.load(Ordering::Relaxed) == 1, "ENOENT is not retried");
    ensure!(!ok(a.exists(none, &t), "exists t")?, "the write was aborted");
    Ok(())
}

fn abort_and_drop_leave_nothing(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    ok(a.mkdir(none, base), "mkdir base")?;
    let dropped = format!("{base}/dropped");
    let dropped_id = {
        let tx = ok(Transaction::start(a), "start")?;
        ok(tx.write(&dropped, "x"), "write in tx")?;
        tx.id()
    };
    ensure!(!ok(b.exists(none, &dropped), "exists")?, "a dropped transaction wrote nothing");
    refused(
        a.transaction_end(dropped_id, false),
        XsOp::TransactionEnd,
        None,
        XsErrno::ENOENT,
        "the dropped transaction is gone",
    )?;
    let aborted = format!("{base}/aborted");
    let tx = ok(Transaction::start(a), "start")?;
    ok(tx.write(&aborted, "x"), "write in tx")?;
    ok(tx.abort(), "abort")?;
    ensure!(!ok(b.exists(none, &aborted), "exists")?, "an aborted transaction wrote nothing");

    let bogus = TxId(0x7fff_fff0);
    refused(a.transaction_end(bogus, true), XsOp::TransactionEnd, None, XsErrno::ENOENT, "unknown transaction")?;
    refused(a.read(bogus, base), XsOp::Read, Some(base), XsErrno::ENOENT, "read in an unknown transaction")?;
    refused(
        a.transaction_end(TxId::NONE, true),
        XsOp::TransactionEnd,
        None,
        XsErrno::ENOENT,
        "ending 'no transaction'",
    )?;
    let tx = ok(Transaction::start(a), "start")?;
    refused(b.read(tx.id(), base), XsOp::Read, Some(base), XsErrno::ENOENT, "another connection's transaction")?;
    ok(tx.abort(), "abort")?;
    Ok(())
}

fn watch_fires(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let w = format!("{base}/w");
    let x = format!("{w}/x");
    ok(a.mkdir(none, &w), "mkdir w")?;
    ok(a.watch(&w, "tok"), "watch")?;
    expect_event(a, &w, "tok", "the initial event of a new watch")?;
    expect_quiet(a, "only one initial event")?;

    ok(b.write(none, &x, b"1"), "b writes w/x")?;
    expect_event(a, &x, "tok", "a write below the watch")?;
    ok(b.write(none, &w, b"2"), "b writes w")?;
    expect_event(a, &w, "tok", "a write of the watched node")?;
    ok(a.write(none, &x, b"3"), "a writes w/x")?;
    expect_event(a, &x, "tok", "the watcher's own write")?;
    ok(b.write(none, &format!("{base}/other"), b"1"), "b writes a sibling")?;
    ok(b.write(none, &format!("{base}/wx"), b"1"), "b writes a name-prefix sibling")?;
    ok(b.mkdir(none, &x), "mkdir of an existing node")?;
    expect_quiet(a, "no event outside the watched path, nor for a no-op mkdir")?;
    let created = format!("{w}/made");
    ok(b.mkdir(none, &created), "mkdir of a new node")?;
    expect_event(a, &created, "tok", "a creating mkdir")?;

    let result = a.watch(&w, "tok");
    refused(result, XsOp::Watch, Some(&w), XsErrno::EEXIST, "the same watch twice")?;
    ok(a.watch(&w, "tok2"), "a second token on the same path")?;
    expect_event(a, &w, "tok2", "the second watch's initial event")?;
    ok(b.write(none, &x, b"4"), "b writes w/x")?;
    let got: BTreeSet<_> = drain(a, "both watches fire")?.into_iter().collect();
    let want: BTreeSet<_> = [pair(&x, "tok"), pair(&x, "tok2")].into_iter().collect();
    ensure!(got == want, "both watches fire once: got {got:?}");

    ok(b.watch(&w, "tok"), "the same path and token on another connection")?;
    expect_event(b, &w, "tok", "b's initial event")?;
    ok(a.unwatch(&w, "tok"), "unwatch")?;
    ok(a.unwatch(&w, "tok2"), "unwatch")?;
    ok(b.unwatch(&w, "tok"), "unwatch")?;
    Ok(())
}

fn unwatch_stops_events(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let w = format!("{base}/w");
    ok(a.mkdir(none, &w), "mkdir w")?;
    ok(a.watch(&w, "tok"), "watch")?;
    expect_event(a, &w, "tok", "initial event")?;
    ok(b.write(none, &format!("{w}/x"), b"1"), "b writes")?;
    // Not drained: unwatch discards it.
    ok(a.unwatch(&w, "tok"), "unwatch")?;
    ok(b.write(none, &format!("{w}/y"), b"1"), "b writes again")?;
    expect_quiet(a, "no events after unwatch")?;
    refused(a.unwatch(&w, "tok"), XsOp::Unwatch, Some(&w), XsErrno::ENOENT, "unwatch of a removed watch")?;
    refused(a.unwatch(&w, "never"), XsOp::Unwatch, Some(&w), XsErrno::ENOENT, "unwatch of an unknown token")?;
    ok(a.watch(&w, "tok"), "watch again")?;
    expect_event(a, &w, "tok", "initial event of the new watch")?;
    ok(a.unwatch(&w, "tok"), "unwatch")
}

fn special_watch_paths(a: &dyn XenStore, _b: &dyn XenStore, _base: &str) -> Outcome {
    for special in ["@releaseDomain", "@introduceDomain"] {
        ok(a.watch(special, "xenvcpu-special"), "watch")?;
        expect_event(a, special, "xenvcpu-special", "initial event")?;
        ok(a.unwatch(special, "xenvcpu-special"), "unwatch")?;
    }
    Ok(())
}

fn rm_fires_watches(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let r = format!("{base}/r");
    let leaf = format!("{r}/a/b");
    ok(a.write(none, &leaf, b"1"), "write r/a/b")?;
    ok(a.watch(base, "top"), "watch base")?;
    ok(a.watch(&r, "sub"), "watch r")?;
    ok(a.watch(&leaf, "leaf"), "watch r/a/b")?;
    let missing_watch = format!("{r}/a/nothing");
    ok(a.watch(&missing_watch, "none"), "watch a node that doesn't exist")?;
    let initial: BTreeSet<_> = drain(a, "initial events")?.into_iter().collect();
    let want: BTreeSet<_> =
        [pair(base, "top"), pair(&r, "sub"), pair(&leaf, "leaf"), pair(&missing_watch, "none")].into_iter().collect();
    ensure!(initial == want, "initial events: got {initial:?}");

    ok(b.rm(none, &r), "b removes r")?;
    let mut got = drain(a, "events of rm")?;
    got.sort();
    let mut want = vec![pair(&r, "top"), pair(&r, "sub"), pair(&leaf, "leaf")];
    want.sort();
    ensure!(got == want, "rm events: expected {want:?}, got {got:?}");

    ok(b.rm(none, &r), "rm of the removed node")?;
    expect_quiet(a, "rm of a missing node fires nothing")?;
    ok(a.unwatch(base, "top"), "unwatch")?;
    ok(a.unwatch(&r, "sub"), "unwatch")?;
    ok(a.unwatch(&leaf, "leaf"), "unwatch")?;
    ok(a.unwatch(&missing_watch, "none"), "unwatch")
}

fn transaction_events_at_commit(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let w = format!("{base}/w");
    let x = format!("{w}/x");
    let y = format!("{w}/y");
    ok(a.mkdir(none, &w), "mkdir w")?;
    ok(a.write(none, &y, b"0"), "write y")?;
    ok(a.watch(&w, "tok"), "watch")?;
    expect_event(a, &w, "tok", "initial event")?;

    let tx = ok(Transaction::start(b), "start")?;
    ok(tx.write(&x, "1"), "write x in tx")?;
    ok(tx.write(&y, "1"), "write y in tx")?;
    ok(tx.write(&y, "2"), "write y again in tx")?;
    expect_quiet(a, "no events before the commit")?;
    ok(tx.commit(), "commit")?;
    let got: BTreeSet<_> = drain(a, "events at commit")?.into_iter().collect();
    let want: BTreeSet<_> = [pair(&x, "tok"), pair(&y, "tok")].into_iter().collect();
    ensure!(got == want, "one event per changed node at commit: got {got:?}");

    let tx = ok(Transaction::start(b), "start")?;
    ok(tx.write(&x, "aborted"), "write in tx")?;
    ok(tx.abort(), "abort")?;
    expect_quiet(a, "an aborted transaction fires nothing")?;
    ok(a.unwatch(&w, "tok"), "unwatch")
}

fn concurrent_requests(a: &dyn XenStore, _b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let nodes: Vec<String> = (0..8).map(|i| format!("{base}/n{i}")).collect();
    for (i, p) in nodes.iter().enumerate() {
        ok(a.write(none, p, format!("value-{i}").as_bytes()), "setup")?;
    }
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let nodes = &nodes;
                scope.spawn(move || -> Result<(), String> {
                    let own = format!("{base}/t{t}");
                    for k in 0..50 {
                        let i = (t * 50 + k) % nodes.len();
                        let got = read_str(a, none, &nodes[i])?;
                        ensure!(got == format!("value-{i}"), "thread {t}: {got}");
                        if k % 10 == 0 {
                            ok(a.write(none, &own, k.to_string().as_bytes()), "write")?;
                            let back = read_str(a, none, &own)?;
                            ensure!(back == k.to_string(), "thread {t}: own node {back}");
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| match w.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("a worker panicked".into()),
            })
            .collect()
    });
    ensure!(failures.is_empty(), "{failures:?}");
    Ok(())
}

fn large_directory(a: &dyn XenStore, b: &dyn XenStore, base: &str) -> Outcome {
    let none = TxId::NONE;
    let dir = format!("{base}/big");
    // 200 names of 32 bytes: 6600 bytes of child list, more than one reply holds.
    let names: Vec<String> = (0..200).map(|i| format!("child-with-a-long-name-{i:09}")).collect();
    for chunk in names.chunks(50) {
        ok(
            transact(a, 5, |tx| {
                for name in chunk {
                    tx.write(&format!("{dir}/{name}"), name)?;
                }
                Ok(())
            }),
            "create children",
        )?;
    }
    let listed = ok(b.directory(none, &dir), "directory")?;
    ensure!(listed.len() == names.len(), "listed {} of {} children", listed.len(), names.len());
    ensure!(sorted(listed) == names, "every child listed once");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_are_unique_and_valid_node_names() {
        let mut seen = BTreeSet::new();
        for check in CHECKS {
            assert!(seen.insert(check.name), "duplicate {}", check.name);
            assert!(check.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{}", check.name);
        }
    }

    #[test]
    fn unknown_check_is_a_divergence() {
        let store = xenvcpu::xenstore::SimStore::new();
        let e = run("nope", &store, &store).unwrap_err();
        assert_eq!(e.detail, "no such check");
    }
}
