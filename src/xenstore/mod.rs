//! Xenstore: the [`XenStore`] trait, a native wire-protocol client ([`XsClient`]) and a
//! simulated store with the same semantics ([`SimStore`]).
//!
//! # Layers
//! - [`XenStore`] is one method per xenstored request (read, write, directory, mkdir, rm,
//!   get-domain-path, transaction start/end, watch/unwatch) plus
//!   [`XenStore::next_event`] for the unsolicited watch events. It is object-safe: code
//!   above this layer takes `&dyn XenStore`.
//! - [`XsClient`] speaks xenstored's wire protocol itself (no libxenstore) over the Unix
//!   socket (`$XENSTORED_PATH`, `/run/xenstored/socket`, `/var/run/xenstored/socket`) or
//!   the xenbus device (`/dev/xen/xenbus`, `/proc/xen/xenbus`). One connection is shared
//!   by all threads; replies are matched to requests by request id.
//! - [`SimStore`] is an in-memory tree with xenstored's semantics (transactions with
//!   conflict detection, watches with the same events), plus fault injection and a log
//!   of mutations for tests. It backs the simulated host.
//! - [`Transaction`] and [`transact`] are the generic helpers on top: a guard that aborts
//!   on drop, and a retry loop for `EAGAIN` at commit (what libxl does when it writes
//!   `cpu/<n>/availability`).
//! - The behaviour checks both backends must pass live with the tests
//!   (`tests/xenstore_checks/`): the host tests run them on [`SimStore`], the lab runs
//!   them on a real xenstored.
//!
//! # Rules both backends enforce before a request is sent
//! - Paths are absolute (`/…`); watches may also name a special path (`@releaseDomain`,
//!   `@introduceDomain`). Anything else is [`XsError::RelativePath`]; a NUL byte in a path
//!   or token is [`XsError::InvalidArgument`].
//! - A request payload over [`PAYLOAD_MAX`] (4096) bytes is
//!   [`XsError::PayloadTooLarge`]: xenstored would drop the whole connection. (Through the
//!   xenbus device the limit is 4080: the kernel's buffer holds the header too.)
//!
//! Everything xenstored refuses comes back as [`XsError::Errno`] with the operation, the
//! path and the error name ([`XsErrno::ENOENT`], [`XsErrno::EAGAIN`], …).
//!
//! # Example
//! ```
//! use xenvcpu::xenstore::{transact, SimStore, TxId, XenStore};
//!
//! let store = SimStore::new();
//! let dompath = store.get_domain_path(7)?;
//! transact(&store, 8, |tx| {
//!     for cpu in 0..4 {
//!         let state: &[u8] = if cpu < 2 { b"online" } else { b"offline" };
//!         tx.write(&format!("{dompath}/cpu/{cpu}/availability"), state)?;
//!     }
//!     Ok(())
//! })?;
//! assert_eq!(store.read_string(TxId::NONE, "/local/domain/7/cpu/3/availability")?, "offline");
//! # Ok::<(), xenvcpu::xenstore::XsError>(())
//! ```
//! Against the real xenstored, only the store changes:
//! ```no_run
//! use xenvcpu::xenstore::{TxId, XenStore, XsClient};
//!
//! let xs = XsClient::open()?;
//! let name = xs.read_string(TxId::NONE, "/local/domain/1/name")?;
//! # Ok::<(), xenvcpu::xenstore::XsError>(())
//! ```

use std::fmt;
use std::time::Duration;

mod client;
mod error;
pub mod paths;
#[cfg(feature = "sim")]
mod sim;
mod wire;

pub use client::{default_endpoints, XsClient, DEFAULT_TIMEOUT};
pub use error::{ConnectAttempt, XsErrno, XsError, XsOp};
#[cfg(feature = "sim")]
pub use sim::{Mutation, MutationKind, SimStats, SimStore};
#[doc(hidden)]
pub use wire::fuzzing as wire_fuzzing;
pub use wire::PAYLOAD_MAX;

/// A transaction id as carried in the `tx_id` header field; [`TxId::NONE`] (0) means "no
/// transaction".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TxId(pub u32);

impl TxId {
    /// Outside any transaction: requests apply immediately.
    pub const NONE: TxId = TxId(0);

    /// Whether this is [`TxId::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A watch event: `path` changed (or the watch was just registered), reported for the
/// watch registered with `token`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchEvent {
    /// The node that changed: the watched path itself or a node below it.
    pub path: String,
    /// The token given to [`XenStore::watch`].
    pub token: String,
}

/// The xenstore operations, one method per xenstored request.
///
/// Every method that takes a `tx` runs inside that transaction ([`TxId::NONE`]: outside
/// any). Paths must be absolute. Errors name the operation and the path; xenstored's
/// refusals are [`XsError::Errno`].
///
/// Implementations: [`XsClient`] (the real xenstored) and [`SimStore`] (in memory). The
/// trait is object-safe; take `&dyn XenStore` in code that works with either.
pub trait XenStore: Send + Sync + fmt::Debug {
    /// `XS_READ`: the value of the node at `path` (raw bytes; no trailing NUL).
    ///
    /// # Errors
    /// `ENOENT` if there is no such node; `EACCES` without read permission; `EINVAL` for a
    /// malformed path; `ENOENT` for an unknown transaction.
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>, XsError>;

    /// `XS_WRITE`: sets the value of the node at `path`, creating it and any missing
    /// parents (with empty values). Fires watches on `path` and its ancestors (at commit
    /// inside a transaction).
    ///
    /// # Errors
    /// `EACCES`, `EINVAL` (malformed path), `ENOSPC` (quota);
    /// [`XsError::PayloadTooLarge`] if path + value exceed [`PAYLOAD_MAX`] - 1 bytes.
    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<(), XsError>;

    /// `XS_DIRECTORY`: the names (not paths) of the children of `path`, in xenstored's
    /// order (creation order). Lists too long for one reply (`E2BIG`) are fetched with
    /// `XS_DIRECTORY_PART` by the client.
    ///
    /// # Errors
    /// `ENOENT` if there is no such node; `EACCES`; `EINVAL`.
    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>, XsError>;

    /// `XS_MKDIR`: creates the node at `path` (and missing parents) with an empty value.
    /// An existing node is left as it is, and no watch fires.
    ///
    /// # Errors
    /// `EACCES`, `EINVAL`.
    fn mkdir(&self, tx: TxId, path: &str) -> Result<(), XsError>;

    /// `XS_RM`: removes the node at `path` and everything below it. Removing a node that
    /// does not exist succeeds if its parent exists.
    ///
    /// # Errors
    /// `ENOENT` if neither the node nor its parent exists; `EINVAL` for `/`; `EACCES`.
    fn rm(&self, tx: TxId, path: &str) -> Result<(), XsError>;

    /// `XS_GET_DOMAIN_PATH`: the home path of domain `domid`, `/local/domain/<domid>`.
    /// xenstored answers for any domid, running or not.
    ///
    /// # Errors
    /// Only connection errors in practice.
    fn get_domain_path(&self, domid: u32) -> Result<String, XsError>;

    /// `XS_TRANSACTION_START`: opens a transaction on this connection. Requests carrying
    /// its id see the store as of each node's first access in the transaction, plus the
    /// transaction's own changes; nobody else sees those changes before the commit.
    ///
    /// # Errors
    /// `ENOSPC` when the connection has too many open transactions (quota).
    fn transaction_start(&self) -> Result<TxId, XsError>;

    /// `XS_TRANSACTION_END`: commits (`commit = true`) or aborts the transaction. Either
    /// way the transaction is gone afterwards. A commit whose nodes were changed by
    /// someone else since the transaction first accessed them fails with `EAGAIN`
    /// ([`XsError::is_again`]); nothing of it is applied and the caller may redo the
    /// whole transaction (see [`transact`]).
    ///
    /// # Errors
    /// `EAGAIN` (conflict); `ENOENT` for an unknown transaction (or [`TxId::NONE`]).
    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<(), XsError>;

    /// `XS_WATCH`: watches `path` and everything below it; events carry `token`. The
    /// path may also be a special one starting with `@` (`@releaseDomain`, …). xenstored
    /// fires every new watch once right away (an event for `path` itself); changes fire
    /// one event per changed node.
    ///
    /// # Errors
    /// `EEXIST` if this connection already has a watch with the same path and token;
    /// `EINVAL` for a malformed path; `E2BIG`/`ENOSPC` for watch quotas.
    fn watch(&self, path: &str, token: &str) -> Result<(), XsError>;

    /// `XS_UNWATCH`: removes the watch registered with this path and token. Events of it
    /// still queued on this connection are discarded.
    ///
    /// # Errors
    /// `ENOENT` if there is no such watch.
    fn unwatch(&self, path: &str, token: &str) -> Result<(), XsError>;

    /// The next watch event of this connection, waiting at most `timeout`; `Ok(None)` if
    /// none arrived in time. Events that arrive while other requests wait for their
    /// replies are queued here, in arrival order, never lost.
    ///
    /// # Errors
    /// [`XsError::Disconnected`] when the connection is gone and no event is queued.
    fn next_event(&self, timeout: Duration) -> Result<Option<WatchEvent>, XsError>;

    /// Where the store is, for messages: the socket or device of a connection to
    /// xenstored.
    fn endpoint(&self) -> String {
        "xenstore".into()
    }

    /// [`XenStore::read`] as a string.
    ///
    /// # Errors
    /// Those of `read`, and [`XsError::NotUtf8`] if the value is not UTF-8.
    fn read_string(&self, tx: TxId, path: &str) -> Result<String, XsError> {
        let bytes = self.read(tx, path)?;
        String::from_utf8(bytes).map_err(|source| XsError::NotUtf8 { path: path.to_owned(), source })
    }

    /// Whether the node at `path` exists: a [`XenStore::read`] where `ENOENT` is `false`.
    ///
    /// # Errors
    /// Those of `read`, except `ENOENT`.
    fn exists(&self, tx: TxId, path: &str) -> Result<bool, XsError> {
        match self.read(tx, path) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// An open transaction that aborts when dropped without [`Transaction::commit`].
///
/// ```
/// use xenvcpu::xenstore::{SimStore, Transaction, TxId, XenStore};
///
/// let store = SimStore::new();
/// {
///     let tx = Transaction::start(&store)?;
///     tx.write("/scratch/a", "1")?;
/// } // dropped: aborted
/// assert!(!store.exists(TxId::NONE, "/scratch/a")?);
/// # Ok::<(), xenvcpu::xenstore::XsError>(())
/// ```
pub struct Transaction<'a> {
    store: &'a dyn XenStore,
    id: TxId,
    finished: bool,
}

impl<'a> Transaction<'a> {
    /// Starts a transaction on `store` (`XS_TRANSACTION_START`).
    ///
    /// # Errors
    /// Those of [`XenStore::transaction_start`].
    pub fn start(store: &'a dyn XenStore) -> Result<Self, XsError> {
        let id = store.transaction_start()?;
        Ok(Transaction { store, id, finished: false })
    }

    /// The transaction's id.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// The store it runs on.
    pub fn store(&self) -> &'a dyn XenStore {
        self.store
    }

    /// [`XenStore::read`] inside the transaction.
    ///
    /// # Errors
    /// Those of [`XenStore::read`].
    pub fn read(&self, path: &str) -> Result<Vec<u8>, XsError> {
        self.store.read(self.id, path)
    }

    /// [`XenStore::read_string`] inside the transaction.
    ///
    /// # Errors
    /// Those of [`XenStore::read_string`].
    pub fn read_string(&self, path: &str) -> Result<String, XsError> {
        self.store.read_string(self.id, path)
    }

    /// [`XenStore::exists`] inside the transaction.
    ///
    /// # Errors
    /// Those of [`XenStore::exists`].
    pub fn exists(&self, path: &str) -> Result<bool, XsError> {
        self.store.exists(self.id, path)
    }

    /// [`XenStore::write`] inside the transaction (visible to others after the commit).
    ///
    /// # Errors
    /// Those of [`XenStore::write`].
    pub fn write(&self, path: &str, value: impl AsRef<[u8]>) -> Result<(), XsError> {
        self.store.write(self.id, path, value.as_ref())
    }

    /// [`XenStore::directory`] inside the transaction.
    ///
    /// # Errors
    /// Those of [`XenStore::directory`].
    pub fn directory(&self, path: &str) -> Result<Vec<String>, XsError> {
        self.store.directory(self.id, path)
    }

    /// [`XenStore::mkdir`] inside the transaction.
    ///
    /// # Errors
    /// Those of [`XenStore::mkdir`].
    pub fn mkdir(&self, path: &str) -> Result<(), XsError> {
        self.store.mkdir(self.id, path)
    }

    /// [`XenStore::rm`] inside the transaction.
    ///
    /// # Errors
    /// Those of [`XenStore::rm`].
    pub fn rm(&self, path: &str) -> Result<(), XsError> {
        self.store.rm(self.id, path)
    }

    /// Commits (`XS_TRANSACTION_END "T"`). The transaction is finished whatever the
    /// outcome: after `EAGAIN`, start a new one (or use [`transact`]).
    ///
    /// # Errors
    /// `EAGAIN` on a conflict ([`XsError::is_again`]), and those of
    /// [`XenStore::transaction_end`].
    pub fn commit(mut self) -> Result<(), XsError> {
        self.finished = true;
        self.store.transaction_end(self.id, true)
    }

    /// Aborts (`XS_TRANSACTION_END "F"`): nothing of the transaction is applied. Dropping
    /// the guard does the same but cannot report errors.
    ///
    /// # Errors
    /// Those of [`XenStore::transaction_end`].
    pub fn abort(mut self) -> Result<(), XsError> {
        self.finished = true;
        self.store.transaction_end(self.id, false)
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Nothing to report to: if the abort fails the connection is gone, and
            // xenstored drops a connection's transactions with it.
            let _ = self.store.transaction_end(self.id, false);
        }
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction").field("id", &self.id).field("finished", &self.finished).finish_non_exhaustive()
    }
}

/// Runs `f` inside a transaction and commits it, redoing the whole attempt when it ends in
/// `EAGAIN` (a conflict at commit, or an `EAGAIN` returned by `f`), at most `max_attempts`
/// times (0 counts as 1). Any other error aborts the transaction and is returned as is.
///
/// `f` may run several times, so it should only touch the store through the transaction
/// it is given (and keep no side effects of a failed attempt).
///
/// # Errors
/// [`XsError::RetriesExhausted`] (with the number of attempts, and
/// [`XsError::is_again`] true) when every attempt conflicted; otherwise the first error of
/// starting the transaction, of `f`, or of the commit.
pub fn transact<T>(
    store: &dyn XenStore,
    max_attempts: u32,
    mut f: impl FnMut(&Transaction<'_>) -> Result<T, XsError>,
) -> Result<T, XsError> {
    let max_attempts = max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tx = Transaction::start(store)?;
        let outcome = match f(&tx) {
            Ok(value) => tx.commit().map(|()| value),
            Err(e) => {
                drop(tx); // aborts
                Err(e)
            }
        };
        match outcome {
            Ok(value) => return Ok(value),
            Err(e) if e.is_again() && attempt < max_attempts => continue,
            Err(e) if e.is_again() => return Err(XsError::RetriesExhausted { attempts: attempt, last: Box::new(e) }),
            Err(e) => return Err(e),
        }
    }
}

/// Checks a path argument the way both backends do before sending: absolute (or, where
/// `special_ok`, an `@` special path) and free of NUL bytes.
pub(crate) fn check_path(op: XsOp, path: &str, special_ok: bool) -> Result<(), XsError> {
    let absolute = path.starts_with('/') || (special_ok && path.starts_with('@'));
    if !absolute {
        return Err(XsError::RelativePath { op, path: path.to_owned() });
    }
    if path.contains('\0') {
        return Err(XsError::InvalidArgument { op, what: "path", value: path.to_owned() });
    }
    Ok(())
}

/// Checks a watch token: no NUL bytes.
pub(crate) fn check_token(op: XsOp, token: &str) -> Result<(), XsError> {
    if token.contains('\0') {
        return Err(XsError::InvalidArgument { op, what: "token", value: token.to_owned() });
    }
    Ok(())
}

/// Checks a request's payload size against the connection's `limit` ([`PAYLOAD_MAX`] on
/// sockets and in the simulation).
pub(crate) fn check_size(op: XsOp, path: Option<&str>, request: &wire::Request, limit: usize) -> Result<(), XsError> {
    if request.payload.len() > limit {
        return Err(XsError::PayloadTooLarge { op, path: path.map(str::to_owned), size: request.payload.len(), limit });
    }
    Ok(())
}

/// Whether `path` is `watch` or below it (xenstored's `is_child`).
pub(crate) fn is_at_or_below(path: &str, watch: &str) -> bool {
    if watch == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(watch).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute_and_nul_free() {
        assert!(check_path(XsOp::Read, "/a", false).is_ok());
        assert!(matches!(check_path(XsOp::Read, "a/b", false), Err(XsError::RelativePath { op: XsOp::Read, .. })));
        assert!(matches!(check_path(XsOp::Read, "", false), Err(XsError::RelativePath { .. })));
        assert!(matches!(check_path(XsOp::Read, "@releaseDomain", false), Err(XsError::RelativePath { .. })));
        assert!(check_path(XsOp::Watch, "@releaseDomain", true).is_ok());
        assert!(matches!(check_path(XsOp::Write, "/a\0b", false), Err(XsError::InvalidArgument { what: "path", .. })));
        assert!(matches!(check_token(XsOp::Watch, "t\0"), Err(XsError::InvalidArgument { what: "token", .. })));
    }

    #[test]
    fn payload_limit_is_inclusive() {
        let path = "/p";
        let fits = wire::Request::write(path, &[b'x'; PAYLOAD_MAX - 3]);
        assert_eq!(fits.payload.len(), PAYLOAD_MAX);
        assert!(check_size(XsOp::Write, Some(path), &fits, PAYLOAD_MAX).is_ok());
        let over = wire::Request::write(path, &[b'x'; PAYLOAD_MAX - 2]);
        match check_size(XsOp::Write, Some(path), &over, PAYLOAD_MAX) {
            Err(XsError::PayloadTooLarge { size, path, .. }) => {
                assert_eq!(size, PAYLOAD_MAX + 1);
                assert_eq!(path.as_deref(), Some("/p"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn watch_matching_is_by_path_component() {
        assert!(is_at_or_below("/a", "/a"));
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(!is_at_or_below("/", "/a"));
        assert!(is_at_or_below("/x", "/"));
        assert!(!is_at_or_below("@releaseDomain", "/"));
    }

    #[test]
    fn tx_id_none_is_zero() {
        assert!(TxId::NONE.is_none());
        assert!(!TxId(3).is_none());
        assert_eq!(TxId(3).to_string(), "3");
    }
}
