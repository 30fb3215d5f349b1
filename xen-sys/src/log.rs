//! libxenctrl's log messages, captured instead of printed.
//!
//! Given a null logger, `xc_interface_open` creates one that writes to stderr, so a library
//! user would see e.g. `xencall: error: Could not obtain handle on privileged command
//! interface: Permission denied` above its own error. xen-sys passes its own xentoollog
//! logger ([`logger`]) instead. Each message it receives (level [`LogLevel::Progress`] and
//! up, the levels libxenctrl's stderr logger shows; finer ones are dropped unformatted):
//!
//! 1. is kept in a small per-thread buffer of recent messages ([`take_messages`]), so the
//!    error of the call that failed can quote it ([`crate::OpenError`] does);
//! 2. is passed to the process-wide hook set with [`set_log_hook`], if any.
//!
//! Nothing is ever printed by this crate. xen-sys's own warnings (see
//! [`secure_env_var`](crate::secure_env_var)) go to the hook too.

use std::cell::{RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, PoisonError, RwLock};

use crate::abi::{
    xentoollog_level, xentoollog_logger, XTL_CRITICAL, XTL_DEBUG, XTL_DETAIL, XTL_ERROR, XTL_INFO, XTL_NOTICE,
    XTL_PROGRESS, XTL_VERBOSE, XTL_WARN,
};

/// The severity of a message (libxentoollog's `xentoollog_level`, least severe first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `XTL_DEBUG`.
    Debug,
    /// `XTL_VERBOSE`.
    Verbose,
    /// `XTL_DETAIL`.
    Detail,
    /// `XTL_PROGRESS`.
    Progress,
    /// `XTL_INFO`.
    Info,
    /// `XTL_NOTICE`.
    Notice,
    /// `XTL_WARN`; also xen-sys's own warnings.
    Warn,
    /// `XTL_ERROR`.
    Error,
    /// `XTL_CRITICAL`.
    Critical,
}

impl LogLevel {
    /// The level of an `xentoollog_level` value, `None` for values outside the enum.
    pub fn from_xtl(level: xentoollog_level) -> Option<Self> {
        Some(match level {
            XTL_DEBUG => Self::Debug,
            XTL_VERBOSE => Self::Verbose,
            XTL_DETAIL => Self::Detail,
            XTL_PROGRESS => Self::Progress,
            XTL_INFO => Self::Info,
            XTL_NOTICE => Self::Notice,
            XTL_WARN => Self::Warn,
            XTL_ERROR => Self::Error,
            XTL_CRITICAL => Self::Critical,
            _ => return None,
        })
    }

    /// The lower-case name libxentoollog prints (`"warning"`, `"error"` …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Verbose => "verbose",
            Self::Detail => "detail",
            Self::Progress => "progress",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warn => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message from libxenctrl (or the libraries below it), formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogMessage {
    /// Its severity.
    pub level: LogLevel,
    /// `context: message[: strerror(errno)]`, e.g. `xencall: Could not obtain handle on
    /// privileged command interface: No such file or directory`.
    pub text: String,
}

impl fmt::Display for LogMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A log hook: receives each message's level and text ([`set_log_hook`]).
pub type LogHook = Box<dyn Fn(LogLevel, &str) + Send + Sync>;

type Hook = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Sets (or with `None` removes) the process-wide log hook, replacing any previous one.
///
/// The hook receives every message libxenctrl logs at [`LogLevel::Progress`] or above, and
/// xen-sys's own warnings (e.g. an environment override ignored in a set-user-ID process),
/// on the thread that caused it, without a trailing newline. Without a hook (the default)
/// messages are only kept for the errors of the calls that failed ([`take_messages`]), and
/// nothing is printed. A panic in the hook is caught and discarded: it never unwinds into C.
/// The hook must not block for long: it runs inside libxenctrl calls.
///
/// ```
/// xen_sys::set_log_hook(Some(Box::new(|level, message| eprintln!("myprog: {level}: {message}"))));
/// ```
pub fn set_log_hook(hook: Option<LogHook>) {
    *HOOK.write().unwrap_or_else(PoisonError::into_inner) = hook.map(Hook::from);
}

/// Passes one message to the hook, if any; a panic in it is caught.
pub(crate) fn emit(level: LogLevel, text: &str) {
    // Clone the hook out so that it runs without the lock (it may call set_log_hook).
    let hook = HOOK.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(hook) = hook {
        let _ = catch_unwind(AssertUnwindSafe(|| hook(level, text)));
    }
}

/// How many messages each thread keeps.
const KEPT: usize = 16;

thread_local! {
    static RECENT: RefCell<VecDeque<LogMessage>> = const { RefCell::new(VecDeque::new()) };
}

fn record(message: LogMessage) {
    // try_with: during thread teardown the buffer may be gone; the message is then dropped.
    let _ = RECENT.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(message);
        }
    });
}

/// Removes and returns the messages libxenctrl logged on this thread since the last call
/// (at most the 16 most recent), oldest first. Call it before a libxenctrl call to start
/// afresh, and after a failure to learn what libxenctrl said about it.
pub fn take_messages() -> Vec<LogMessage> {
    RECENT
        .try_with(|recent| recent.try_borrow_mut().map(|mut r| r.drain(..).collect()).unwrap_or_default())
        .unwrap_or_default()
}

extern "C" {
    // C's vsnprintf. `ap` is a `va_list`: on x86_64 SysV that type is `__va_list_tag[1]`,
    // which as a parameter decays to a pointer, so `*mut c_void` passes it unchanged.
    fn vsnprintf(buf: *mut c_char, n: usize, fmt: *const c_char, ap: *mut c_void) -> c_int;
}

/// Bytes a formatted message may take; longer ones are cut (vsnprintf truncates safely).
const MESSAGE_MAX: usize = 1024;

/// `strerror(errno)` without Rust's " (os error N)" suffix.
fn strerror(errno: c_int) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// The logger's `vmessage`: formats the message, keeps it, passes it to the hook.
///
/// # Safety
/// Called by libxentoollog (`xtl_logv`) with a valid, NUL-terminated `format` (or null),
/// `context` null or NUL-terminated, and `al` the `va_list` holding `format`'s arguments.
unsafe extern "C" fn vmessage(
    _logger: *mut xentoollog_logger,
    level: xentoollog_level,
    errnoval: c_int,
    context: *const c_char,
    format: *const c_char,
    al: *mut c_void,
) {
    let level = match LogLevel::from_xtl(level) {
        Some(level) if level >= LogLevel::Progress => level,
        _ => return,
    };
    // SAFETY: errno is thread-local and always readable; saved so that the caller's errno
    // survives whatever formatting and the hook do (xtl_logv restores it too, but libxencall
    // may call the logger in other ways).
    let saved_errno = unsafe { *libc::__errno_location() };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut buf = [0 as c_char; MESSAGE_MAX];
        let body = if format.is_null() {
            String::from("(no message)")
        } else {
            // SAFETY: `buf` has MESSAGE_MAX writable bytes and vsnprintf writes at most that
            // many, NUL included; `format` is a NUL-terminated printf format whose arguments
            // are in `al` (libxentoollog's contract, checked by its format attribute at
            // libxenctrl's build); `al` is the caller's va_list, consumed once, here. On
            // x86_64 SysV, the only target of this crate (lib.rs refuses others), a va_list
            // parameter is a pointer to `__va_list_tag`, which `*mut c_void` carries unchanged.
            let n = unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), format, al) };
            if n < 0 {
                String::from("(unformattable message)")
            } else {
                // SAFETY: vsnprintf succeeded, so `buf` holds a NUL-terminated string.
                unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
            }
        };
        let mut text = String::new();
        if !context.is_null() {
            // SAFETY: a non-null context is a NUL-terminated string (e.g. "xencall").
            text.push_str(&unsafe { CStr::from_ptr(context) }.to_string_lossy());
            text.push_str(": ");
        }
        text.push_str(&body);
        if errnoval >= 0 {
            text.push_str(": ");
            text.push_str(&strerror(errnoval));
        }
        record(LogMessage { level, text: text.clone() });
        emit(level, &text);
    }));
    // SAFETY: as above; restores the value read before the callback did anything.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// The logger's `progress`: ignored (xenvcpu's calls report no progress).
unsafe extern "C" fn progress(
    _logger: *mut xentoollog_logger,
    _context: *const c_char,
    _doing_what: *const c_char,
    _percent: c_int,
    _done: c_ulong,
    _total: c_ulong,
) {
}

/// The logger's `destroy`: nothing to free, the logger is a static.
unsafe extern "C" fn destroy(_logger: *mut xentoollog_logger) {}

/// The static logger. `UnsafeCell` because C receives a `*mut` to it: libxentoollog never
/// writes to a logger it did not create, but the pointer is then derived soundly anyway.
struct StaticLogger(UnsafeCell<xentoollog_logger>);

// SAFETY: the logger is never written after initialisation (no Rust code takes `&mut` of
// it, and libxentoollog only reads the callback table), and its callbacks are safe to call
// from any thread (they touch thread-locals and a lock).
unsafe impl Sync for StaticLogger {}

static LOGGER: StaticLogger = StaticLogger(UnsafeCell::new(xentoollog_logger {
    vmessage: Some(vmessage),
    progress: Some(progress),
    destroy: Some(destroy),
}));

/// xen-sys's xentoollog logger, for `xc_interface_open(logger(), logger(), 0)`: messages go
/// to the per-thread buffer ([`take_messages`]) and the hook ([`set_log_hook`]), never to
/// stderr. It is a static: valid for the whole process, shareable by any number of handles
/// and threads. Never pass it to `xtl_logger_destroy` (doing so is harmless: it frees
/// nothing). [`crate::Interface::open`] already uses it.
pub fn logger() -> *mut xentoollog_logger {
    LOGGER.0.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_from_xtl_and_order_by_severity() {
        assert_eq!(LogLevel::from_xtl(XTL_ERROR), Some(LogLevel::Error));
        assert_eq!(LogLevel::from_xtl(0), None);
        assert_eq!(LogLevel::from_xtl(10), None);
        assert!(LogLevel::Warn > LogLevel::Progress);
        assert_eq!(LogLevel::Warn.to_string(), "warning");
    }

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
    }

    #[test]
    fn buffer_keeps_the_most_recent_messages_per_thread() {
        let _ = take_messages();
        for i in 0..KEPT + 3 {
            record(LogMessage { level: LogLevel::Error, text: format!("m{i}") });
        }
        let other = std::thread::spawn(take_messages).join().unwrap();
        assert!(other.is_empty(), "another thread sees nothing: {other:?}");
        let mine = take_messages();
        assert_eq!(mine.len(), KEPT);
        assert_eq!(mine[0].text, "m3");
        assert!(take_messages().is_empty(), "taken");
    }
}
