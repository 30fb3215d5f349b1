//! Errors of the xenstore layer: [`XsError`], the errno names xenstored sends ([`XsErrno`])
//! and the operations they are reported for ([`XsOp`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A xenstore operation, as named in error messages.
///
/// Each one is one request type of the wire protocol (see [`XsOp::wire_name`]), except
/// [`XsOp::NextEvent`], which waits for unsolicited watch events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XsOp {
    /// `XS_READ`: read a node's value.
    Read,
    /// `XS_WRITE`: write a node's value, creating missing parents.
    Write,
    /// `XS_DIRECTORY` (and `XS_DIRECTORY_PART` for long lists): list a node's children.
    Directory,
    /// `XS_MKDIR`: create a node (and missing parents) with an empty value.
    Mkdir,
    /// `XS_RM`: remove a node and its subtree.
    Rm,
    /// `XS_GET_DOMAIN_PATH`: the home path of a domain.
    GetDomainPath,
    /// `XS_TRANSACTION_START`.
    TransactionStart,
    /// `XS_TRANSACTION_END` (commit or abort).
    TransactionEnd,
    /// `XS_WATCH`: register a watch.
    Watch,
    /// `XS_UNWATCH`: remove a watch.
    Unwatch,
    /// Waiting for a watch event (`XS_WATCH_EVENT` messages).
    NextEvent,
}

impl XsOp {
    /// The operation's name in messages: `read`, `write`, `directory`, `mkdir`, `rm`,
    /// `get-domain-path`, `transaction-start`, `transaction-end`, `watch`, `unwatch`,
    /// `next-event`.
    pub const fn name(self) -> &'static str {
        match self {
            XsOp::Read => "read",
            XsOp::Write => "write",
            XsOp::Directory => "directory",
            XsOp::Mkdir => "mkdir",
            XsOp::Rm => "rm",
            XsOp::GetDomainPath => "get-domain-path",
            XsOp::TransactionStart => "transaction-start",
            XsOp::TransactionEnd => "transaction-end",
            XsOp::Watch => "watch",
            XsOp::Unwatch => "unwatch",
            XsOp::NextEvent => "next-event",
        }
    }

    /// The `xsd_sockmsg_type` name of the request (`XS_READ`, …); `XS_WATCH_EVENT` for
    /// [`XsOp::NextEvent`].
    pub const fn wire_name(self) -> &'static str {
        match self {
            XsOp::Read => "XS_READ",
            XsOp::Write => "XS_WRITE",
            XsOp::Directory => "XS_DIRECTORY",
            XsOp::Mkdir => "XS_MKDIR",
            XsOp::Rm => "XS_RM",
            XsOp::GetDomainPath => "XS_GET_DOMAIN_PATH",
            XsOp::TransactionStart => "XS_TRANSACTION_START",
            XsOp::TransactionEnd => "XS_TRANSACTION_END",
            XsOp::Watch => "XS_WATCH",
            XsOp::Unwatch => "XS_UNWATCH",
            XsOp::NextEvent => "XS_WATCH_EVENT",
        }
    }
}

impl fmt::Display for XsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error name sent by xenstored in an `XS_ERROR` reply (`xsd_errors` in `xs_wire.h`).
///
/// The variants keep xenstored's spelling so that a `match` reads like the protocol.
/// Names outside the table (a newer xenstored, or a broken one) are kept in
/// [`XsErrno::Other`].
#[allow(clippy::upper_case_acronyms)] // the wire names, verbatim
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum XsErrno {
    /// No such node (or transaction, or watch).
    ENOENT,
    /// Permission denied.
    EACCES,
    /// Transaction conflict: retry the whole transaction.
    EAGAIN,
    /// Already exists (e.g. the same watch registered twice).
    EEXIST,
    /// Invalid argument (e.g. a malformed path).
    EINVAL,
    /// Is a directory.
    EISDIR,
    /// Out of memory.
    ENOMEM,
    /// Out of space, or a quota was exceeded.
    ENOSPC,
    /// Input/output error inside xenstored.
    EIO,
    /// Directory not empty.
    ENOTEMPTY,
    /// Request type not supported.
    ENOSYS,
    /// Read-only.
    EROFS,
    /// Busy.
    EBUSY,
    /// Already connected.
    EISCONN,
    /// Reply too big (e.g. `XS_DIRECTORY` of a node with very many children).
    E2BIG,
    /// Operation not permitted.
    EPERM,
    /// Any other name, verbatim.
    Other(String),
}

impl XsErrno {
    /// Maps a wire name (`"ENOENT"`, …) to its variant; unknown names become `Other`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "ENOENT" => XsErrno::ENOENT,
            "EACCES" => XsErrno::EACCES,
            "EAGAIN" => XsErrno::EAGAIN,
            "EEXIST" => XsErrno::EEXIST,
            "EINVAL" => XsErrno::EINVAL,
            "EISDIR" => XsErrno::EISDIR,
            "ENOMEM" => XsErrno::ENOMEM,
            "ENOSPC" => XsErrno::ENOSPC,
            "EIO" => XsErrno::EIO,
            "ENOTEMPTY" => XsErrno::ENOTEMPTY,
            "ENOSYS" => XsErrno::ENOSYS,
            "EROFS" => XsErrno::EROFS,
            "EBUSY" => XsErrno::EBUSY,
            "EISCONN" => XsErrno::EISCONN,
            "E2BIG" => XsErrno::E2BIG,
            "EPERM" => XsErrno::EPERM,
            other => XsErrno::Other(other.to_owned()),
        }
    }

    /// The wire name, as xenstored spells it.
    pub fn name(&self) -> &str {
        match self {
            XsErrno::ENOENT => "ENOENT",
            XsErrno::EACCES => "EACCES",
            XsErrno::EAGAIN => "EAGAIN",
            XsErrno::EEXIST => "EEXIST",
            XsErrno::EINVAL => "EINVAL",
            XsErrno::EISDIR => "EISDIR",
            XsErrno::ENOMEM => "ENOMEM",
            XsErrno::ENOSPC => "ENOSPC",
            XsErrno::EIO => "EIO",
            XsErrno::ENOTEMPTY => "ENOTEMPTY",
            XsErrno::ENOSYS => "ENOSYS",
            XsErrno::EROFS => "EROFS",
            XsErrno::EBUSY => "EBUSY",
            XsErrno::EISCONN => "EISCONN",
            XsErrno::E2BIG => "E2BIG",
            XsErrno::EPERM => "EPERM",
            XsErrno::Other(name) => name,
        }
    }

    /// A short description of what the name means for a xenstore request.
    pub fn description(&self) -> &'static str {
        match self {
            XsErrno::ENOENT => "no such node",
            XsErrno::EACCES => "permission denied",
            XsErrno::EAGAIN => "transaction conflict, try again",
            XsErrno::EEXIST => "already exists",
            XsErrno::EINVAL => "invalid argument",
            XsErrno::EISDIR => "is a directory",
            XsErrno::ENOMEM => "out of memory",
            XsErrno::ENOSPC => "no space or quota exceeded",
            XsErrno::EIO => "i/o error in xenstored",
            XsErrno::ENOTEMPTY => "directory not empty",
            XsErrno::ENOSYS => "not supported",
            XsErrno::EROFS => "read-only",
            XsErrno::EBUSY => "busy",
            XsErrno::EISCONN => "already connected",
            XsErrno::E2BIG => "reply too big",
            XsErrno::EPERM => "operation not permitted",
            XsErrno::Other(_) => "unknown error name",
        }
    }

    /// The Linux errno number of the same name (`libc::ENOENT`, …); `None` for `Other`.
    pub fn raw_os_error(&self) -> Option<i32> {
        Some(match self {
            XsErrno::ENOENT => libc::ENOENT,
            XsErrno::EACCES => libc::EACCES,
            XsErrno::EAGAIN => libc::EAGAIN,
            XsErrno::EEXIST => libc::EEXIST,
            XsErrno::EINVAL => libc::EINVAL,
            XsErrno::EISDIR => libc::EISDIR,
            XsErrno::ENOMEM => libc::ENOMEM,
            XsErrno::ENOSPC => libc::ENOSPC,
            XsErrno::EIO => libc::EIO,
            XsErrno::ENOTEMPTY => libc::ENOTEMPTY,
            XsErrno::ENOSYS => libc::ENOSYS,
            XsErrno::EROFS => libc::EROFS,
            XsErrno::EBUSY => libc::EBUSY,
            XsErrno::EISCONN => libc::EISCONN,
            XsErrno::E2BIG => libc::E2BIG,
            XsErrno::EPERM => libc::EPERM,
            XsErrno::Other(_) => return None,
        })
    }
}

impl fmt::Display for XsErrno {
    /// `ENOENT (no such node)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

/// One endpoint [`XsClient::open`](super::XsClient::open) tried, and why it failed.
#[derive(Debug)]
pub struct ConnectAttempt {
    /// The socket or device path.
    pub path: PathBuf,
    /// The error connecting to or opening it.
    pub error: io::Error,
}

impl fmt::Display for ConnectAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// An error of the xenstore layer.
///
/// Every variant that belongs to a request names the operation and, when the request has
/// one, the path, e.g. `xenstore read /local/domain/7/name: ENOENT (no such node)`.
/// Use [`XsError::errno`], [`XsError::is_again`] and [`XsError::is_not_found`] to act on
/// xenstored's answer without matching every variant.
#[derive(Debug, thiserror::Error)]
pub enum XsError {
    /// xenstored (or the simulated store) refused the request with an `XS_ERROR` reply.
    #[error("xenstore {op}{}: {errno}", PathSuffix(.path))]
    Errno {
        /// The request.
        op: XsOp,
        /// Its path, when it has one.
        path: Option<String>,
        /// The error name from the reply.
        errno: XsErrno,
    },
    /// The path is not absolute. Socket connections may only use absolute paths; this is
    /// checked before anything is sent.
    #[error("xenstore {op} {path:?}: relative path refused (a path must start with '/')")]
    RelativePath {
        /// The request.
        op: XsOp,
        /// The path as given.
        path: String,
    },
    /// A path or watch token contains a NUL byte, which the NUL-separated payload cannot
    /// carry. Checked before anything is sent.
    #[error("xenstore {op} {value:?}: {what} contains a NUL byte")]
    InvalidArgument {
        /// The request.
        op: XsOp,
        /// `"path"` or `"token"`.
        what: &'static str,
        /// The argument as given (lossily converted for display).
        value: String,
    },
    /// The request payload would exceed what the connection accepts: `XENSTORE_PAYLOAD_MAX`
    /// (4096 bytes) on the socket, for which xenstored drops the whole connection; 4080 on
    /// the xenbus device, whose kernel buffer holds the 16-byte header too. Checked before
    /// anything is sent.
    #[error("xenstore {op}{}: payload of {size} bytes exceeds the {limit}-byte limit (not sent)", PathSuffix(.path))]
    PayloadTooLarge {
        /// The request.
        op: XsOp,
        /// Its path, when it has one.
        path: Option<String>,
        /// The payload size the request would have had.
        size: usize,
        /// The largest payload the connection accepts.
        limit: usize,
    },
    /// No endpoint could be opened; every endpoint tried is listed, in order.
    #[error("xenstore: cannot connect to xenstored: {}", AttemptList(.attempts))]
    Connect {
        /// Each endpoint tried, with its error.
        attempts: Vec<ConnectAttempt>,
    },
    /// Reading from or writing to the connection failed.
    #[error("xenstore {op}{}: i/o error: {source}", PathSuffix(.path))]
    Io {
        /// The request.
        op: XsOp,
        /// Its path, when it has one.
        path: Option<String>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The connection is gone (xenstored closed it, or an earlier i/o or protocol error
    /// ended it); every later request on this client fails the same way.
    #[error("xenstore {op}{}: connection lost: {reason}", PathSuffix(.path))]
    Disconnected {
        /// The request.
        op: XsOp,
        /// Its path, when it has one.
        path: Option<String>,
        /// Why the connection ended.
        reason: String,
    },
    /// A reply did not follow the protocol (wrong type, malformed payload).
    #[error("xenstore {op}{}: protocol error: {detail}", PathSuffix(.path))]
    Protocol {
        /// The request.
        op: XsOp,
        /// Its path, when it has one.
        path: Option<String>,
        /// What was wrong.
        detail: String,
    },
    /// No reply arrived within the client's timeout.
    #[error("xenstore {op}{}: no reply within {after:?}", PathSuffix(.path))]
    Timeout {
        /// The request.
        op: XsOp,
        /// Its path, when it has one.
        path: Option<String>,
        /// The timeout that expired.
        after: Duration,
    },
    /// A value read as a string is not UTF-8.
    #[error("xenstore read {path}: value is not UTF-8")]
    NotUtf8 {
        /// The node.
        path: String,
        /// The conversion error (it holds the raw bytes).
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// [`transact`](super::transact) gave up: every attempt ended in a conflict.
    #[error("xenstore transaction: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt (an `EAGAIN`).
        #[source]
        last: Box<XsError>,
    },
}

impl XsError {
    /// The xenstored error name, if this error carries one (looking through
    /// [`XsError::RetriesExhausted`] to its last error).
    pub fn errno(&self) -> Option<&XsErrno> {
        match self {
            XsError::Errno { errno, .. } => Some(errno),
            XsError::RetriesExhausted { last, .. } => last.errno(),
            _ => None,
        }
    }

    /// The Linux errno behind the error: the reply's error name as a number, the i/o
    /// error of the connection, or the last endpoint's connect error.
    pub fn raw_errno(&self) -> Option<i32> {
        match self {
            XsError::Io { source, .. } => source.raw_os_error(),
            XsError::Connect { attempts } => attempts.last().and_then(|a| a.error.raw_os_error()),
            XsError::Timeout { .. } => Some(libc::ETIMEDOUT),
            _ => self.errno().and_then(XsErrno::raw_os_error),
        }
    }

    /// `true` when xenstored cannot be reached or does not answer: the connection could
    /// not be made, broke, or a reply did not come in time. The store itself said
    /// nothing, so this is the environment's fault, not the request's.
    pub fn is_unavailable(&self) -> bool {
        match self {
            XsError::Connect { .. } | XsError::Io { .. } | XsError::Disconnected { .. } | XsError::Timeout { .. } => {
                true
            }
            XsError::RetriesExhausted { last, .. } => last.is_unavailable(),
            _ => false,
        }
    }

    /// `true` for `EAGAIN`: a transaction conflict; the whole transaction may be retried.
    pub fn is_again(&self) -> bool {
        self.errno() == Some(&XsErrno::EAGAIN)
    }

    /// `true` for `ENOENT`: no such node (or transaction, or watch).
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(&XsErrno::ENOENT)
    }

    /// The operation the error belongs to (`None` for connect errors).
    pub fn op(&self) -> Option<XsOp> {
        match self {
            XsError::Errno { op, .. }
            | XsError::RelativePath { op, .. }
            | XsError::InvalidArgument { op, .. }
            | XsError::PayloadTooLarge { op, .. }
            | XsError::Io { op, .. }
            | XsError::Disconnected { op, .. }
            | XsError::Protocol { op, .. }
            | XsError::Timeout { op, .. } => Some(*op),
            XsError::NotUtf8 { .. } => Some(XsOp::Read),
            XsError::RetriesExhausted { last, .. } => last.op(),
            XsError::Connect { .. } => None,
        }
    }

    /// The path the error belongs to, when the request had one.
    pub fn path(&self) -> Option<&str> {
        match self {
            XsError::Errno { path, .. }
            | XsError::PayloadTooLarge { path, .. }
            | XsError::Io { path, .. }
            | XsError::Disconnected { path, .. }
            | XsError::Protocol { path, .. }
            | XsError::Timeout { path, .. } => path.as_deref(),
            XsError::RelativePath { path, .. } | XsError::NotUtf8 { path, .. } => Some(path),
            XsError::InvalidArgument { what, value, .. } => (*what == "path").then_some(value),
            XsError::RetriesExhausted { last, .. } => last.path(),
            XsError::Connect { .. } => None,
        }
    }

    pub(crate) fn refused(op: XsOp, path: Option<&str>, errno: XsErrno) -> Self {
        XsError::Errno { op, path: path.map(str::to_owned), errno }
    }
}

/// Formats `Some(path)` as `" <path>"`, `None` as nothing.
struct PathSuffix<'a>(&'a Option<String>);

impl fmt::Display for PathSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, " {path}"),
            None => Ok(()),
        }
    }
}

struct AttemptList<'a>(&'a [ConnectAttempt]);

impl fmt::Display for AttemptList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no endpoint to try");
        }
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 16] = [
        "ENOENT",
        "EACCES",
        "EAGAIN",
        "EEXIST",
        "EINVAL",
        "EISDIR",
        "ENOMEM",
        "ENOSPC",
        "EIO",
        "ENOTEMPTY",
        "ENOSYS",
        "EROFS",
        "EBUSY",
        "EISCONN",
        "E2BIG",
        "EPERM",
    ];

    /// The Linux errno numbers by name, from libc (independent of `raw_os_error`).
    fn linux_errno(name: &str) -> Option<i32> {
        Some(match name {
            "EINVAL" => libc::EINVAL,
            "EACCES" => libc::EACCES,
            "EEXIST" => libc::EEXIST,
            "EISDIR" => libc::EISDIR,
            "ENOENT" => libc::ENOENT,
            "ENOMEM" => libc::ENOMEM,
            "ENOSPC" => libc::ENOSPC,
            "EIO" => libc::EIO,
            "ENOTEMPTY" => libc::ENOTEMPTY,
            "ENOSYS" => libc::ENOSYS,
            "EROFS" => libc::EROFS,
            "EBUSY" => libc::EBUSY,
            "EAGAIN" => libc::EAGAIN,
            "EISCONN" => libc::EISCONN,
            "E2BIG" => libc::E2BIG,
            "EPERM" => libc::EPERM,
            _ => return None,
        })
    }

    #[test]
    fn every_wire_name_maps_to_a_variant_and_back() {
        for name in NAMES {
            let errno = XsErrno::from_name(name);
            assert!(!matches!(errno, XsErrno::Other(_)), "{name}");
            assert_eq!(errno.name(), name);
            let raw = errno.raw_os_error().unwrap();
            // The number is the Linux errno of the same name: strerror(3) of it is what
            // the kernel calls that name (e.g. ENOENT, not EIO).
            assert_eq!(Some(raw), linux_errno(name), "{name}");
        }
        let other = XsErrno::from_name("EQUOTA");
        assert_eq!(other, XsErrno::Other("EQUOTA".into()));
        assert_eq!(other.name(), "EQUOTA");
        assert_eq!(other.raw_os_error(), None);
    }

    #[test]
    fn display_names_operation_path_and_errno() {
        let e = XsError::refused(XsOp::Read, Some("/local/domain/7/name"), XsErrno::ENOENT);
        assert_eq!(e.to_string(), "xenstore read /local/domain/7/name: ENOENT (no such node)");
        assert!(e.is_not_found());
        assert!(!e.is_again());
        assert_eq!(e.op(), Some(XsOp::Read));
        assert_eq!(e.path(), Some("/local/domain/7/name"));

        let e = XsError::refused(XsOp::TransactionEnd, None, XsErrno::EAGAIN);
        assert_eq!(e.to_string(), "xenstore transaction-end: EAGAIN (transaction conflict, try again)");
        let gave_up = XsError::RetriesExhausted { attempts: 5, last: Box::new(e) };
        assert!(gave_up.is_again());
        assert!(gave_up.to_string().contains("gave up after 5 attempts"));
        assert_eq!(gave_up.op(), Some(XsOp::TransactionEnd));
    }

    #[test]
    fn connect_error_lists_every_endpoint() {
        let e = XsError::Connect {
            attempts: vec![
                ConnectAttempt {
                    path: "/run/xenstored/socket".into(),
                    error: io::Error::from(io::ErrorKind::NotFound),
                },
                ConnectAttempt {
                    path: "/dev/xen/xenbus".into(),
                    error: io::Error::from(io::ErrorKind::PermissionDenied),
                },
            ],
        };
        let text = e.to_string();
        assert!(text.contains("/run/xenstored/socket: "), "{text}");
        assert!(text.contains("; /dev/xen/xenbus: "), "{text}");
        assert_eq!(e.op(), None);
    }

    #[test]
    fn payload_too_large_says_it_was_not_sent() {
        let e = XsError::PayloadTooLarge { op: XsOp::Write, path: Some("/a".into()), size: 5000, limit: 4096 };
        assert_eq!(e.to_string(), "xenstore write /a: payload of 5000 bytes exceeds the 4096-byte limit (not sent)");
    }
}
