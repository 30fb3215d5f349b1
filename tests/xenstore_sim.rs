//! Host tests of the xenstore layer on the simulated store: every conformance check (the
//! same ones the lab runs against the real xenstored), and the simulation's own hooks —
//! fault injection, the mutation log, special watches, connection teardown.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use xenvcpu::xenstore::{
    transact, Mutation, MutationKind, SimStats, SimStore, Transaction, TxId, WatchEvent, XenStore, XsErrno, XsError,
    XsOp,
};

mod xenstore_checks;

use xenstore_checks::conformance;

const NONE: TxId = TxId::NONE;

fn conform(name: &str) {
    let a = SimStore::new();
    let b = a.connect();
    if let Err(d) = conformance::run(name, &a, &b) {
        panic!("{d}");
    }
}

xenstore_checks!(conform);

#[test]
fn all_checks_pass_in_sequence_on_one_store() {
    let a = SimStore::new();
    let b = a.connect();
    for check in conformance::CHECKS {
        conformance::run(check.name, &a, &b).unwrap_or_else(|d| panic!("{d}"));
    }
    // Every check cleaned up after itself.
    assert_eq!(a.directory(NONE, conformance::SCRATCH_ROOT).unwrap().len(), 0);
}

#[test]
fn injected_conflicts_make_transact_retry() {
    let store = SimStore::new();
    store.inject_conflicts(2);
    let mut attempts = 0;
    transact(&store, 5, |tx| {
        attempts += 1;
        tx.write("/local/domain/7/cpu/0/availability", "online")
    })
    .unwrap();
    assert_eq!(attempts, 3);
    let stats = store.stats();
    assert_eq!(stats, SimStats { transactions_started: 3, commits: 1, aborts: 0, conflicts: 2, mutations: 1 });
}

#[test]
fn injected_conflicts_beyond_max_attempts_give_up_having_written_nothing() {
    let store = SimStore::new();
    store.inject_conflicts(5);
    let mut attempts = 0;
    let e = transact(&store, 3, |tx| {
        attempts += 1;
        tx.write("/a", "x")
    })
    .unwrap_err();
    assert!(matches!(e, XsError::RetriesExhausted { attempts: 3, .. }), "{e}");
    assert!(e.is_again());
    assert!(
        e.to_string().starts_with("xenstore transaction: gave up after 3 attempts: xenstore transaction-end: EAGAIN"),
        "{e}"
    );
    assert_eq!(attempts, 3);
    assert!(store.mutations().is_empty(), "nothing was written");
    assert!(!store.exists(NONE, "/a").unwrap());
    // Two injected conflicts are left for the next commits.
    store.inject_conflicts(0);
    let tx = Transaction::start(&store).unwrap();
    assert!(tx.commit().unwrap_err().is_again());
}

#[test]
fn injected_errors_fail_the_next_request_of_that_kind_without_effect() {
    let store = SimStore::new();
    store.inject_error(XsOp::Write, XsErrno::EACCES);
    let e = store.write(NONE, "/x", b"1").unwrap_err();
    assert_eq!(e.to_string(), "xenstore write /x: EACCES (permission denied)");
    assert!(store.mutations().is_empty());
    store.write(NONE, "/x", b"1").unwrap();

    store.inject_error(XsOp::Read, XsErrno::EIO);
    store.inject_error(XsOp::Read, XsErrno::ENOMEM);
    assert_eq!(store.read(NONE, "/x").unwrap_err().errno(), Some(&XsErrno::EIO));
    assert_eq!(store.read(NONE, "/x").unwrap_err().errno(), Some(&XsErrno::ENOMEM));
    assert_eq!(store.read(NONE, "/x").unwrap(), b"1");
}

#[test]
fn an_injected_error_at_commit_still_ends_the_transaction() {
    let store = SimStore::new();
    store.inject_error(XsOp::TransactionEnd, XsErrno::EIO);
    let tx = Transaction::start(&store).unwrap();
    let id = tx.id();
    tx.write("/a", "1").unwrap();
    assert_eq!(tx.commit().unwrap_err().errno(), Some(&XsErrno::EIO));
    assert!(store.transaction_end(id, false).unwrap_err().is_not_found());
    assert!(!store.exists(NONE, "/a").unwrap());
}

#[test]
fn the_mutation_log_records_effective_committed_changes_only() {
    let store = SimStore::new();
    store.write(NONE, "/d/a", b"1").unwrap();
    store.mkdir(NONE, "/d/a").unwrap(); // exists: no-op
    store.mkdir(NONE, "/d/m").unwrap();
    store.rm(NONE, "/d/missing").unwrap(); // nothing to remove
    {
        let tx = Transaction::start(&store).unwrap();
        tx.write("/d/aborted", "x").unwrap();
    }
    let tx = Transaction::start(&store).unwrap();
    let id = tx.id();
    tx.write("/d/b", "2").unwrap();
    tx.rm("/d/m").unwrap();
    assert_eq!(store.mutations().len(), 2, "nothing of the open transaction yet");
    tx.commit().unwrap();
    store.rm(NONE, "/d/a").unwrap();
    let log = store.take_mutations();
    let expected = [
        (MutationKind::Write(b"1".to_vec()), "/d/a", NONE),
        (MutationKind::Mkdir, "/d/m", NONE),
        (MutationKind::Write(b"2".to_vec()), "/d/b", id),
        (MutationKind::Rm, "/d/m", id),
        (MutationKind::Rm, "/d/a", NONE),
    ]
    .map(|(kind, path, tx)| Mutation { kind, path: path.to_owned(), tx });
    assert_eq!(log, expected);
    assert!(store.mutations().is_empty(), "take_mutations clears the log");
    let stats = store.stats();
    assert_eq!((stats.mutations, stats.commits, stats.aborts), (5, 1, 1));
}

#[test]
fn tree_shows_the_committed_subtree() {
    let store = SimStore::new();
    store.write(NONE, "/local/domain/7/name", b"guest").unwrap();
    store.write(NONE, "/local/domain/7/cpu/0/availability", b"online").unwrap();
    let tx = Transaction::start(&store).unwrap();
    tx.write("/local/domain/7/cpu/1/availability", "online").unwrap();
    let tree = store.tree("/local/domain/7").unwrap();
    let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/local/domain/7",
            "/local/domain/7/cpu",
            "/local/domain/7/cpu/0",
            "/local/domain/7/cpu/0/availability",
            "/local/domain/7/name",
        ]
    );
    assert_eq!(tree["/local/domain/7/name"], b"guest");
    assert!(store.tree("/local/domain/8").is_none());
    tx.abort().unwrap();
}

#[test]
fn availability_update_is_one_transaction_and_fires_the_guest_watch_at_commit() {
    let host = SimStore::new();
    let guest = host.connect();
    let dompath = host.get_domain_path(7).unwrap();
    for cpu in 0..4 {
        host.write(NONE, &format!("{dompath}/cpu/{cpu}/availability"), b"online").unwrap();
    }
    guest.watch(&format!("{dompath}/cpu"), "hotplug").unwrap();
    assert_eq!(guest.next_event(Duration::ZERO).unwrap().unwrap().path, "/local/domain/7/cpu");
    host.take_mutations();
    transact(&host, 8, |tx| {
        for cpu in 0..4 {
            let state = if cpu < 2 { "online" } else { "offline" };
            tx.write(&format!("{dompath}/cpu/{cpu}/availability"), state)?;
        }
        Ok(())
    })
    .unwrap();
    let log = host.take_mutations();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|m| m.tx == log[0].tx && !m.tx.is_none()));
    let mut events = Vec::new();
    while let Some(ev) = guest.next_event(Duration::ZERO).unwrap() {
        events.push(ev.path);
    }
    assert_eq!(events, (0..4).map(|cpu| format!("/local/domain/7/cpu/{cpu}/availability")).collect::<Vec<_>>());
    assert_eq!(host.read_string(NONE, "/local/domain/7/cpu/3/availability").unwrap(), "offline");
}

#[test]
fn special_watches_fire_only_when_asked() {
    let a = SimStore::new();
    let b = a.connect();
    a.watch("@releaseDomain", "gone").unwrap();
    assert_eq!(
        a.next_event(Duration::ZERO).unwrap(),
        Some(WatchEvent { path: "@releaseDomain".into(), token: "gone".into() })
    );
    b.watch("/", "everything").unwrap();
    b.next_event(Duration::ZERO).unwrap();
    a.write(NONE, "/local/domain/3/name", b"x").unwrap();
    assert_eq!(a.next_event(Duration::ZERO).unwrap(), None, "not a node watch");
    assert_eq!(b.next_event(Duration::ZERO).unwrap().unwrap().path, "/local/domain/3/name");
    a.fire_special("@releaseDomain");
    assert_eq!(a.next_event(Duration::ZERO).unwrap().unwrap().path, "@releaseDomain");
    assert_eq!(b.next_event(Duration::ZERO).unwrap(), None, "/ doesn't cover @ names");
    a.unwatch("@releaseDomain", "gone").unwrap();
    a.fire_special("@releaseDomain");
    assert_eq!(a.next_event(Duration::ZERO).unwrap(), None);
}

#[test]
fn dropping_a_connection_removes_its_watches_and_transactions() {
    let a = SimStore::new();
    let b = a.connect();
    b.watch("/w", "t").unwrap();
    let tx = b.transaction_start().unwrap();
    b.write(tx, "/w/x", b"never").unwrap();
    drop(b);
    let c = a.connect();
    assert!(c.transaction_end(tx, true).unwrap_err().is_not_found());
    a.write(NONE, "/w/y", b"1").unwrap();
    assert!(!a.exists(NONE, "/w/x").unwrap());
    assert_eq!(a.stats().commits, 0);
}

#[test]
fn next_event_waits_for_an_event_from_another_thread() {
    let a = Arc::new(SimStore::new());
    let b = a.connect();
    a.watch("/w", "t").unwrap();
    a.next_event(Duration::ZERO).unwrap();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        b.write(NONE, "/w/x", b"1").unwrap();
    });
    let start = Instant::now();
    let ev = a.next_event(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(ev.path, "/w/x");
    assert!(start.elapsed() < Duration::from_secs(5));
    writer.join().unwrap();
    let start = Instant::now();
    assert_eq!(a.next_event(Duration::from_millis(30)).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn the_trait_is_object_safe_and_shareable() {
    let boxed: Box<dyn XenStore> = Box::new(SimStore::new());
    boxed.write(NONE, "/a", b"1").unwrap();
    let shared: Arc<dyn XenStore> = Arc::new(SimStore::new());
    let clone = Arc::clone(&shared);
    thread::spawn(move || clone.write(NONE, "/b", b"2").unwrap()).join().unwrap();
    assert_eq!(shared.read_string(NONE, "/b").unwrap(), "2");
    let value = transact(&*shared, 1, |tx| tx.read_string("/b")).unwrap();
    assert_eq!(value, "2");
}

#[test]
fn a_transaction_can_remove_and_recreate_a_subtree() {
    let store = SimStore::new();
    store.write(NONE, "/t/old/x", b"1").unwrap();
    transact(&store, 3, |tx| {
        tx.rm("/t")?;
        assert!(!tx.exists("/t/old/x")?);
        tx.write("/t/new/y", "2")?;
        assert_eq!(tx.directory("/t")?, ["new"]);
        Ok(())
    })
    .unwrap();
    let tree = store.tree("/t").unwrap();
    let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(paths, ["/t", "/t/new", "/t/new/y"]);
}

#[test]
fn removing_the_root_is_einval() {
    let store = SimStore::new();
    let e = store.rm(NONE, "/").unwrap_err();
    assert_eq!(e.errno(), Some(&XsErrno::EINVAL));
    assert_eq!(store.directory(NONE, "/").unwrap(), Vec::<String>::new());
}

#[test]
fn directory_lists_children_in_creation_order() {
    let store = SimStore::new();
    for name in ["c", "a", "b"] {
        store.write(NONE, &format!("/d/{name}"), b"").unwrap();
    }
    store.rm(NONE, "/d/a").unwrap();
    store.write(NONE, "/d/a", b"").unwrap();
    assert_eq!(store.directory(NONE, "/d").unwrap(), ["c", "b", "a"]);
}

#[test]
fn a_commit_fires_in_the_order_the_transaction_first_accessed_the_nodes() {
    let a = SimStore::new();
    let b = a.connect();
    a.write(NONE, "/w/y", b"0").unwrap();
    b.watch("/w", "t").unwrap();
    b.next_event(Duration::ZERO).unwrap();
    transact(&a, 1, |tx| {
        tx.read("/w/y")?; // first access of y
        tx.write("/w/x", "1")?;
        tx.write("/w/y", "1")?;
        tx.write("/w/x", "2")
    })
    .unwrap();
    let mut paths = Vec::new();
    while let Some(ev) = b.next_event(Duration::ZERO).unwrap() {
        paths.push(ev.path);
    }
    assert_eq!(paths, ["/w/y", "/w/x"], "once per node, y first");
}
