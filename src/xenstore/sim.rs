//! [`SimStore`]: an in-memory xenstore with xenstored's semantics, for tests and the
//! simulated host.
//!
//! The model's rules are documented on [`SimStore`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::wire::Request;
use super::{
    check_path, check_size, check_token, is_at_or_below, TxId, WatchEvent, XenStore, XsErrno, XsError, XsOp,
    PAYLOAD_MAX,
};

/// What a recorded mutation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationKind {
    /// A write of this value.
    Write(Vec<u8>),
    /// A `mkdir` that created the node.
    Mkdir,
    /// An `rm` that removed the node (and its subtree).
    Rm,
}

/// A change applied to the store, as recorded by [`SimStore::mutations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// What was done.
    pub kind: MutationKind,
    /// The path of the request.
    pub path: String,
    /// The transaction it was committed in ([`TxId::NONE`] outside transactions).
    pub tx: TxId,
}

/// Counters of a [`SimStore`] (shared by all its connections), see [`SimStore::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Transactions started.
    pub transactions_started: u64,
    /// Transactions committed successfully.
    pub commits: u64,
    /// Transactions aborted (explicitly, or by dropping a [`Transaction`](super::Transaction)).
    pub aborts: u64,
    /// Commits refused with `EAGAIN` (real conflicts and injected ones).
    pub conflicts: u64,
    /// Mutations applied to the tree (writes, creating mkdirs, effective rms), counting
    /// those of committed transactions at commit.
    pub mutations: u64,
}

#[derive(Debug, Clone)]
struct Node {
    value: Vec<u8>,
    children: Vec<String>,
    generation: u64,
}

impl Node {
    fn new(value: Vec<u8>) -> Self {
        Node { value, children: Vec::new(), generation: 0 }
    }
}

/// A node as a transaction saw it at first access, and its view since.
#[derive(Debug)]
struct Access {
    /// Generation in the tree at first access (`None`: absent).
    generation: Option<u64>,
    /// The transaction's view of the node (`None`: absent).
    node: Option<Node>,
    /// Changed by the transaction.
    modified: bool,
    /// The watches to fire for it at commit, if any.
    fire: Option<Match>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Watches at or above the node.
    Subtree,
    /// Watches on exactly the node.
    Exact,
}

#[derive(Debug)]
struct Tx {
    conn: u64,
    accessed: HashMap<String, Access>,
    /// The accessed paths in first-access order (xenstored's accessed-node list: the
    /// order in which a commit fires its watches).
    order: Vec<String>,
    mutations: Vec<Mutation>,
}

#[derive(Debug)]
struct Watch {
    path: String,
    token: String,
}

#[derive(Debug, Default)]
struct Connection {
    watches: Vec<Watch>,
    events: VecDeque<WatchEvent>,
}

#[derive(Debug)]
struct Db {
    nodes: HashMap<String, Node>,
    generation: u64,
    txs: HashMap<u32, Tx>,
    next_tx: u32,
    conns: HashMap<u64, Connection>,
    next_conn: u64,
    injected_conflicts: u32,
    injected_errors: Vec<(XsOp, XsErrno)>,
    log: Vec<Mutation>,
    stats: SimStats,
}

#[derive(Debug)]
struct Shared {
    db: Mutex<Db>,
    /// Signalled whenever events are queued.
    changed: Condvar,
}

/// An in-memory xenstore with xenstored's semantics.
///
/// The model follows the C xenstored of Xen 4.17 (`tools/xenstore/xenstored_core.c`,
/// `xenstored_transaction.c`, `xenstored_watch.c`), and the lab checks it against the real
/// daemon (see the conformance checks in `tests/xenstore_checks/`; every check there passed on
/// Xen 4.17's xenstored in the lab):
/// - Nodes have a value and an ordered child list (new children are appended). A write
///   creates missing parents with empty values; `mkdir` of an existing node changes
///   nothing; `rm` removes a subtree, and `rm` of a missing node succeeds when its parent
///   exists (`ENOENT` otherwise); `rm /` is `EINVAL`.
/// - Node names use `[A-Za-z0-9_@/-]`, with no `//` and no trailing `/`; anything else is
///   `EINVAL`.
/// - Every change gives the node a new generation number (a parent changes too when a
///   child is added or removed). A transaction sees each node as it was when the
///   transaction first touched it (read, write, list, or as the parent of a node it
///   creates or removes) plus its own changes; the commit fails with `EAGAIN` if any node
///   it touched has a different generation by then, and applies nothing.
/// - Watches fire once when registered (an event for the watched path), then for every
///   `write`, creating `mkdir` and `rm` at or below the watched path: one event per
///   request, naming the path of the request. `rm` additionally fires, for each removed
///   descendant, the watches registered exactly on it. Changes made in a transaction fire
///   at commit, one event per changed node, in the order the transaction first accessed
///   the nodes; aborted or conflicting ones never fire.
///
/// Each [`SimStore`] value is one connection: watches, events and transactions belong to
/// it, as they belong to a connection in xenstored. [`SimStore::connect`] opens another
/// connection to the same tree (the "second client" of conflict tests).
///
/// Dropping a connection removes its watches and aborts its open transactions.
///
/// Test hooks: [`SimStore::inject_conflicts`], [`SimStore::inject_error`],
/// [`SimStore::mutations`] / [`SimStore::take_mutations`], [`SimStore::stats`],
/// [`SimStore::tree`], [`SimStore::fire_special`].
pub struct SimStore {
    shared: Arc<Shared>,
    conn: u64,
}

impl fmt::Debug for SimStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimStore").field("connection", &self.conn).finish_non_exhaustive()
    }
}

impl Default for SimStore {
    fn default() -> Self {
        Self::new()
    }
}

impl SimStore {
    /// A new store holding only the root node `/` (empty value), and a first connection
    /// to it.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert("/".to_owned(), Node::new(Vec::new()));
        let mut conns = HashMap::new();
        conns.insert(1, Connection::default());
        let db = Db {
            nodes,
            generation: 1,
            txs: HashMap::new(),
            next_tx: 1,
            conns,
            next_conn: 2,
            injected_conflicts: 0,
            injected_errors: Vec::new(),
            log: Vec::new(),
            stats: SimStats::default(),
        };
        SimStore { shared: Arc::new(Shared { db: Mutex::new(db), changed: Condvar::new() }), conn: 1 }
    }

    /// Opens another connection to the same tree, with its own watches, events and
    /// transactions.
    pub fn connect(&self) -> SimStore {
        let mut db = self.lock();
        let conn = db.next_conn;
        db.next_conn += 1;
        db.conns.insert(conn, Connection::default());
        SimStore { shared: Arc::clone(&self.shared), conn }
    }

    /// The next `n` commits (on any connection) fail with `EAGAIN` as if another client
    /// had changed a node the transaction touched; nothing of them is applied.
    pub fn inject_conflicts(&self, n: u32) {
        self.lock().injected_conflicts += n;
    }

    /// The next request of kind `op` (on any connection) fails with `errno`, without
    /// effect. A failed `transaction-end` still ends the transaction, as in xenstored.
    /// Injections queue up: two calls for the same `op` fail its next two requests.
    pub fn inject_error(&self, op: XsOp, errno: XsErrno) {
        self.lock().injected_errors.push((op, errno));
    }

    /// Every mutation applied to the tree so far, in order (a transaction's at its
    /// commit). Assert "nothing was written" with `mutations().is_empty()`.
    pub fn mutations(&self) -> Vec<Mutation> {
        self.lock().log.clone()
    }

    /// Like [`SimStore::mutations`], and clears the log.
    pub fn take_mutations(&self) -> Vec<Mutation> {
        std::mem::take(&mut self.lock().log)
    }

    /// The store's counters.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// The committed subtree at `path` (the node and everything below it) as path → value,
    /// or `None` if there is no such node.
    pub fn tree(&self, path: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let db = self.lock();
        db.nodes.get(path)?;
        let mut out = BTreeMap::new();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(node) = db.nodes.get(&p) {
                stack.extend(node.children.iter().map(|c| child_path(&p, c)));
                out.insert(p, node.value.clone());
            }
        }
        Some(out)
    }

    /// Fires the special watch `name` (e.g. `@releaseDomain`, `@introduceDomain`) on every
    /// connection watching exactly that name, as xenstored does when a domain goes away
    /// or is introduced.
    pub fn fire_special(&self, name: &str) {
        self.lock().deliver(name, Match::Exact);
        self.shared.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        // Nothing panics while holding the lock, so a poisoned tree is still consistent.
        self.shared.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one request: injected errors first, then the transaction check, then `f`;
    /// wakes event waiters afterwards.
    fn run<T>(
        &self,
        op: XsOp,
        path: Option<&str>,
        tx: TxId,
        f: impl FnOnce(&mut Db, Option<u32>) -> Result<T, XsErrno>,
    ) -> Result<T, XsError> {
        let mut db = self.lock();
        let result = match db.take_injected(op) {
            Some(errno) => Err(errno),
            None => db.check_tx(self.conn, tx).and_then(|tx| f(&mut db, tx)),
        };
        drop(db);
        self.shared.changed.notify_all();
        result.map_err(|errno| XsError::refused(op, path, errno))
    }
}

impl Drop for SimStore {
    fn drop(&mut self) {
        let mut db = self.lock();
        db.conns.remove(&self.conn);
        let conn = self.conn;
        db.txs.retain(|_, tx| tx.conn != conn);
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// xenstored's node-name rule (`is_valid_nodename`) for absolute paths.
fn valid_name(path: &str) -> bool {
    path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_@".contains(&b))
        && !path.contains("//")
        && (path == "/" || !path.ends_with('/'))
}

fn checked_name(path: &str) -> Result<(), XsErrno> {
    if valid_name(path) {
        Ok(())
    } else {
        Err(XsErrno::EINVAL)
    }
}

impl Db {
    fn take_injected(&mut self, op: XsOp) -> Option<XsErrno> {
        let i = self.injected_errors.iter().position(|(o, _)| *o == op)?;
        Some(self.injected_errors.remove(i).1)
    }

    /// `None` outside transactions; `ENOENT` for a transaction this connection doesn't
    /// have.
    fn check_tx(&self, conn: u64, tx: TxId) -> Result<Option<u32>, XsErrno> {
        if tx.is_none() {
            return Ok(None);
        }
        match self.txs.get(&tx.0) {
            Some(t) if t.conn == conn => Ok(Some(tx.0)),
            _ => Err(XsErrno::ENOENT),
        }
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// The node at `path` as seen outside or inside transaction `tx` (recording the
    /// first access).
    fn get(&mut self, tx: Option<u32>, path: &str) -> Option<Node> {
        let Some(id) = tx else {
            return self.nodes.get(path).cloned();
        };
        let global = self.nodes.get(path);
        let t = self.txs.get_mut(&id)?;
        let access = t.accessed.entry(path.to_owned()).or_insert_with(|| {
            t.order.push(path.to_owned());
            Access { generation: global.map(|n| n.generation), node: global.cloned(), modified: false, fire: None }
        });
        access.node.clone()
    }

    /// Replaces (`Some`) or deletes (`None`) the node at `path`.
    fn put(&mut self, tx: Option<u32>, path: &str, node: Option<Node>) {
        match tx {
            None => match node {
                Some(mut node) => {
                    node.generation = self.next_generation();
                    self.nodes.insert(path.to_owned(), node);
                }
                None => {
                    self.nodes.remove(path);
                }
            },
            Some(id) => {
                self.get(tx, path); // records the first access
                if let Some(access) = self.txs.get_mut(&id).and_then(|t| t.accessed.get_mut(path)) {
                    access.node = node;
                    access.modified = true;
                }
            }
        }
    }

    /// Fires watches now, or at commit inside a transaction (once per node; a subtree
    /// firing replaces an exact one, as in xenstored's `queue_watches`).
    fn fire(&mut self, tx: Option<u32>, path: &str, how: Match) {
        let Some(id) = tx else {
            return self.deliver(path, how);
        };
        if let Some(access) = self.txs.get_mut(&id).and_then(|t| t.accessed.get_mut(path)) {
            access.fire = match (access.fire, how) {
                (Some(Match::Subtree), _) | (_, Match::Subtree) => Some(Match::Subtree),
                _ => Some(Match::Exact),
            };
        }
    }

    fn deliver(&mut self, path: &str, how: Match) {
        for conn in self.conns.values_mut() {
            for watch in &conn.watches {
                let hit = match how {
                    Match::Exact => watch.path == path,
                    Match::Subtree => watch.path.starts_with('/') && is_at_or_below(path, &watch.path),
                };
                if hit {
                    conn.events.push_back(WatchEvent { path: path.to_owned(), token: watch.token.clone() });
                }
            }
        }
    }

    fn record(&mut self, tx: Option<u32>, kind: MutationKind, path: &str) {
        let mutation = Mutation { kind, path: path.to_owned(), tx: TxId(tx.unwrap_or(0)) };
        match tx.and_then(|id| self.txs.get_mut(&id)) {
            Some(t) => t.mutations.push(mutation),
            None => {
                self.log.push(mutation);
                self.stats.mutations += 1;
            }
        }
    }

    /// Creates `path` with `value`, and any missing parents with empty values.
    fn create(&mut self, tx: Option<u32>, path: &str, value: Vec<u8>) {
        // Missing nodes from `path` up; the root always exists.
        let mut missing = vec![path.to_owned()];
        let (ancestor_path, mut ancestor) = loop {
            let up = parent_of(missing.last().map_or(path, String::as_str)).to_owned();
            match self.get(tx, &up) {
                Some(node) => break (up, node),
                None => missing.push(up),
            }
        };
        let top = missing.last().map_or(path, String::as_str);
        ancestor.children.push(base_name(top).to_owned());
        self.put(tx, &ancestor_path, Some(ancestor));
        let mut value = Some(value);
        for (i, p) in missing.iter().enumerate() {
            let mut node = Node::new(if i == 0 { value.take().unwrap_or_default() } else { Vec::new() });
            if i > 0 {
                node.children.push(base_name(&missing[i - 1]).to_owned());
            }
            self.put(tx, p, Some(node));
        }
    }

    fn write(&mut self, tx: Option<u32>, path: &str, value: &[u8]) -> Result<(), XsErrno> {
        checked_name(path)?;
        match self.get(tx, path) {
            Some(mut node) => {
                node.value = value.to_vec();
                self.put(tx, path, Some(node));
            }
            None => self.create(tx, path, value.to_vec()),
        }
        self.fire(tx, path, Match::Subtree);
        self.record(tx, MutationKind::Write(value.to_vec()), path);
        Ok(())
    }

    fn mkdir(&mut self, tx: Option<u32>, path: &str) -> Result<(), XsErrno> {
        checked_name(path)?;
        if self.get(tx, path).is_none() {
            self.create(tx, path, Vec::new());
            self.fire(tx, path, Match::Subtree);
            self.record(tx, MutationKind::Mkdir, path);
        }
        Ok(())
    }

    fn rm(&mut self, tx: Option<u32>, path: &str) -> Result<(), XsErrno> {
        checked_name(path)?;
        if self.get(tx, path).is_none() {
            return match self.get(tx, parent_of(path)) {
                Some(_) => Ok(()),
                None => Err(XsErrno::ENOENT),
            };
        }
        if path == "/" {
            return Err(XsErrno::EINVAL);
        }
        self.remove_subtree(tx, path, path);
        let parent_path = parent_of(path);
        if let Some(mut parent) = self.get(tx, parent_path) {
            let name = base_name(path);
            parent.children.retain(|c| c != name);
            self.put(tx, parent_path, Some(parent));
        }
        self.record(tx, MutationKind::Rm, path);
        Ok(())
    }

    /// Deletes `path` and its descendants, children first; the root of the removal fires
    /// subtree watches, descendants fire exact watches (xenstored's `delnode_sub`).
    fn remove_subtree(&mut self, tx: Option<u32>, path: &str, root: &str) {
        let children = self.get(tx, path).map(|n| n.children).unwrap_or_default();
        for child in children {
            self.remove_subtree(tx, &child_path(path, &child), root);
        }
        self.put(tx, path, None);
        let how = if path == root { Match::Subtree } else { Match::Exact };
        self.fire(tx, path, how);
    }

    fn transaction_end(&mut self, conn: u64, tx: TxId, commit: bool) -> Result<(), XsErrno> {
        let id = self.check_tx(conn, tx)?.ok_or(XsErrno::ENOENT)?;
        let Some(t) = self.txs.remove(&id) else {
            return Err(XsErrno::ENOENT);
        };
        if let Some(errno) = self.take_injected(XsOp::TransactionEnd) {
            return Err(errno);
        }
        if !commit {
            self.stats.aborts += 1;
            return Ok(());
        }
        let Tx { mut accessed, order, mutations, .. } = t;
        let conflict = self.injected_conflicts > 0
            || accessed.iter().any(|(path, a)| self.nodes.get(path).map(|n| n.generation) != a.generation);
        if conflict {
            self.injected_conflicts = self.injected_conflicts.saturating_sub(1);
            self.stats.conflicts += 1;
            return Err(XsErrno::EAGAIN);
        }
        for path in order {
            let Some(access) = accessed.remove(&path) else {
                continue;
            };
            if access.modified {
                self.put(None, &path, access.node);
            }
            if let Some(how) = access.fire {
                self.deliver(&path, how);
            }
        }
        self.stats.mutations += mutations.len() as u64;
        self.log.extend(mutations);
        self.stats.commits += 1;
        Ok(())
    }
}

impl XenStore for SimStore {
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>, XsError> {
        let op = XsOp::Read;
        check_path(op, path, false)?;
        check_size(op, Some(path), &Request::read(path), PAYLOAD_MAX)?;
        self.run(op, Some(path), tx, |db, tx| {
            checked_name(path)?;
            db.get(tx, path).map(|n| n.value).ok_or(XsErrno::ENOENT)
        })
    }

    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<(), XsError> {
        let op = XsOp::Write;
        check_path(op, path, false)?;
        check_size(op, Some(path), &Request::write(path, value), PAYLOAD_MAX)?;
        self.run(op, Some(path), tx, |db, tx| db.write(tx, path, value))
    }

    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>, XsError> {
        let op = XsOp::Directory;
        check_path(op, path, false)?;
        check_size(op, Some(path), &Request::directory(path), PAYLOAD_MAX)?;
        self.run(op, Some(path), tx, |db, tx| {
            checked_name(path)?;
            db.get(tx, path).map(|n| n.children).ok_or(XsErrno::ENOENT)
        })
    }

    fn mkdir(&self, tx: TxId, path: &str) -> Result<(), XsError> {
        let op = XsOp::Mkdir;
        check_path(op, path, false)?;
        check_size(op, Some(path), &Request::mkdir(path), PAYLOAD_MAX)?;
        self.run(op, Some(path), tx, |db, tx| db.mkdir(tx, path))
    }

    fn rm(&self, tx: TxId, path: &str) -> Result<(), XsError> {
        let op = XsOp::Rm;
        check_path(op, path, false)?;
        check_size(op, Some(path), &Request::rm(path), PAYLOAD_MAX)?;
        self.run(op, Some(path), tx, |db, tx| db.rm(tx, path))
    }

    fn get_domain_path(&self, domid: u32) -> Result<String, XsError> {
        self.run(XsOp::GetDomainPath, None, TxId::NONE, |_, _| Ok(format!("/local/domain/{domid}")))
    }

    fn transaction_start(&self) -> Result<TxId, XsError> {
        let conn = self.conn;
        self.run(XsOp::TransactionStart, None, TxId::NONE, |db, _| {
            let mut id = db.next_tx;
            while id == 0 || db.txs.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            db.next_tx = id.wrapping_add(1);
            db.txs.insert(id, Tx { conn, accessed: HashMap::new(), order: Vec::new(), mutations: Vec::new() });
            db.stats.transactions_started += 1;
            Ok(TxId(id))
        })
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<(), XsError> {
        let op = XsOp::TransactionEnd;
        let mut db = self.lock();
        let result = db.transaction_end(self.conn, tx, commit);
        drop(db);
        self.shared.changed.notify_all();
        result.map_err(|errno| XsError::refused(op, None, errno))
    }

    fn watch(&self, path: &str, token: &str) -> Result<(), XsError> {
        let op = XsOp::Watch;
        check_path(op, path, true)?;
        check_token(op, token)?;
        check_size(op, Some(path), &Request::watch(path, token), PAYLOAD_MAX)?;
        let conn = self.conn;
        self.run(op, Some(path), TxId::NONE, |db, _| {
            if !path.starts_with('@') {
                checked_name(path)?;
            }
            let c = db.conns.get_mut(&conn).ok_or(XsErrno::EINVAL)?;
            if c.watches.iter().any(|w| w.path == path && w.token == token) {
                return Err(XsErrno::EEXIST);
            }
            c.watches.push(Watch { path: path.to_owned(), token: token.to_owned() });
            // xenstored fires every new watch once, right away.
            c.events.push_back(WatchEvent { path: path.to_owned(), token: token.to_owned() });
            Ok(())
        })
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<(), XsError> {
        let op = XsOp::Unwatch;
        check_path(op, path, true)?;
        check_token(op, token)?;
        check_size(op, Some(path), &Request::unwatch(path, token), PAYLOAD_MAX)?;
        let conn = self.conn;
        self.run(op, Some(path), TxId::NONE, |db, _| {
            let c = db.conns.get_mut(&conn).ok_or(XsErrno::ENOENT)?;
            let i = c.watches.iter().position(|w| w.path == path && w.token == token).ok_or(XsErrno::ENOENT)?;
            c.watches.remove(i);
            c.events.retain(|ev| ev.token != token || !(ev.path == path || is_at_or_below(&ev.path, path)));
            Ok(())
        })
    }

    fn endpoint(&self) -> String {
        "the simulated store".into()
    }

    fn next_event(&self, timeout: Duration) -> Result<Option<WatchEvent>, XsError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut db = self.lock();
        loop {
            if let Some(event) = db.conns.get_mut(&self.conn).and_then(|c| c.events.pop_front()) {
                return Ok(Some(event));
            }
            db = match deadline {
                None => self.shared.changed.wait(db).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    self.shared.changed.wait_timeout(db, deadline - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/c"), "/a/b");
        assert_eq!(base_name("/a/b"), "b");
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
        assert!(valid_name("/local/domain/0/cpu/1/availability"));
        assert!(valid_name("/a-b_c@d"));
        assert!(valid_name("/"));
        assert!(!valid_name("/a/"));
        assert!(!valid_name("/a//b"));
        assert!(!valid_name("/a b"));
        assert!(!valid_name("/a.b"));
    }

    #[test]
    fn write_creates_parents_in_one_child_list_each() {
        let s = SimStore::new();
        s.write(TxId::NONE, "/a/b/c", b"v").unwrap();
        let db = s.lock();
        assert_eq!(db.nodes["/"].children, ["a"]);
        assert_eq!(db.nodes["/a"].children, ["b"]);
        assert_eq!(db.nodes["/a/b"].children, ["c"]);
        assert!(db.nodes["/a/b/c"].children.is_empty());
        assert_eq!(db.nodes["/a/b/c"].value, b"v");
        assert!(db.nodes["/a"].value.is_empty());
    }

    #[test]
    fn every_change_gets_a_new_generation() {
        let s = SimStore::new();
        s.write(TxId::NONE, "/a", b"1").unwrap();
        let g1 = s.lock().nodes["/a"].generation;
        let root1 = s.lock().nodes["/"].generation;
        s.write(TxId::NONE, "/a", b"1").unwrap();
        let g2 = s.lock().nodes["/a"].generation;
        assert_ne!(g1, g2, "rewriting the same value is a change");
        assert_eq!(s.lock().nodes["/"].generation, root1, "parent untouched");
        s.write(TxId::NONE, "/b", b"").unwrap();
        assert_ne!(s.lock().nodes["/"].generation, root1, "child list changed");
    }
}
