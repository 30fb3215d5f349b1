//! The last error of each thread, and the wrapper every entry point runs in.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use xv::Error;

/// xenvcpu_last_error_code(): the last call succeeded.
pub const XENVCPU_OK: c_int = 0;
/// An invalid argument: a NULL pointer, a negative or zero length, unknown flags, an
/// unknown URI.
pub const XENVCPU_ERR_INVALID: c_int = 1;
/// No such domain (by id or name), or the domain went away (or was replaced) meanwhile.
pub const XENVCPU_ERR_NO_DOMAIN: c_int = 2;
/// No such vCPU, a vCPU count out of range, or vCPU 0 asked to go offline.
pub const XENVCPU_ERR_VCPU: c_int = 3;
/// A CPU map the library refuses: a CPU the host lacks, an empty map, or a map without
/// an online CPU of the domain's pool.
pub const XENVCPU_ERR_CPUMAP: c_int = 4;
/// An output buffer too small for the result.
pub const XENVCPU_ERR_BUFFER: c_int = 5;
/// Not supported for this domain (vCPU hotplug of an HVM guest, say).
pub const XENVCPU_ERR_UNSUPPORTED: c_int = 6;
/// Refused: not privileged, or Xen's security policy.
pub const XENVCPU_ERR_DENIED: c_int = 7;
/// The host cannot be used: not running on Xen, libxenctrl not found or not matching the
/// hypervisor, xenstore unreachable.
pub const XENVCPU_ERR_NO_HOST: c_int = 8;
/// A hypercall, xenstore request or allocation failed (see xenvcpu_last_errno()).
pub const XENVCPU_ERR_SYSTEM: c_int = 9;
/// A bug in the library (an internal panic, caught at the API's edge).
pub const XENVCPU_ERR_INTERNAL: c_int = 10;

/// An error as the C caller sees it.
#[derive(Debug)]
pub(crate) struct CError {
    code: c_int,
    errno: c_int,
    message: String,
}

impl CError {
    pub(crate) fn new(code: c_int, message: impl Into<String>) -> Self {
        CError { code, errno: 0, message: message.into() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CError::new(XENVCPU_ERR_INVALID, message)
    }

    pub(crate) fn buffer(message: impl Into<String>) -> Self {
        CError::new(XENVCPU_ERR_BUFFER, message)
    }

    pub(crate) fn no_memory(bytes: usize) -> Self {
        CError { code: XENVCPU_ERR_SYSTEM, errno: libc::ENOMEM, message: format!("cannot allocate {bytes} bytes") }
    }

    fn panic(payload: &(dyn Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        CError::new(XENVCPU_ERR_INTERNAL, format!("internal error in libxenvcpu (please report it): {what}"))
    }
}

impl From<Error> for CError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidArgument(_) | Error::CpuList(_) => XENVCPU_ERR_INVALID,
            Error::NoSuchDomain { .. }
            | Error::NoSuchDomainName { .. }
            | Error::DomainGone { .. }
            | Error::DomainReplaced { .. }
            | Error::NoVcpus { .. } => XENVCPU_ERR_NO_DOMAIN,
            Error::VcpuOutOfRange { .. } | Error::VcpuCountOutOfRange { .. } | Error::Vcpu0Offline { .. } => {
                XENVCPU_ERR_VCPU
            }
            Error::CpuMap(_) | Error::CpusBeyondHost { .. } | Error::EmptyMap { .. } | Error::NoUsableCpu { .. } => {
                XENVCPU_ERR_CPUMAP
            }
            Error::Unsupported(_) | Error::MaxVcpusFixed { .. } => XENVCPU_ERR_UNSUPPORTED,
            Error::Denied { .. } | Error::Permission(_) => XENVCPU_ERR_DENIED,
            Error::NoXen(_)
            | Error::LibraryNotFound(_)
            | Error::VersionMismatch { .. }
            | Error::XenStoreUnavailable { .. }
            | Error::HostTooLarge { .. } => XENVCPU_ERR_NO_HOST,
            _ => XENVCPU_ERR_SYSTEM,
        };
        CError { code, errno: e.errno().map_or(0, |errno| errno.raw()), message: e.to_string() }
    }
}

/// The last error of a thread, kept for xenvcpu_last_error() and friends.
struct Last {
    code: c_int,
    errno: c_int,
    message: CString,
}

thread_local! {
    static LAST: RefCell<Last> = RefCell::new(Last { code: XENVCPU_OK, errno: 0, message: CString::default() });
}

fn set_last(e: CError) {
    // A message cannot hold a NUL for C: cut it there (none of ours has one).
    let mut bytes = e.message.into_bytes();
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    let message = CString::new(bytes).unwrap_or_default();
    // `try_with`: during thread exit the slot may be gone; the error is then lost.
    let _ = LAST.try_with(|last| *last.borrow_mut() = Last { code: e.code, errno: e.errno, message });
}

/// Runs an entry point's body: clears the thread's last error, catches any panic, and
/// turns an error or a panic into `fail` with the last error set.
pub(crate) fn entry<T>(fail: T, body: impl FnOnce() -> Result<T, CError>) -> T {
    let _ = LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        last.code = XENVCPU_OK;
        last.errno = 0;
        last.message = CString::default();
    });
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => {
            set_last(e);
            fail
        }
        Err(payload) => {
            // Dropping the payload may itself panic: keep it from unwinding out of here.
            set_last(CError::panic(&*payload));
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            fail
        }
    }
}

/// The message of the last error of this thread: a string owned by the library, valid
/// until this thread's next call into it; never NULL, empty when the last call succeeded.
#[no_mangle]
pub extern "C" fn xenvcpu_last_error() -> *const c_char {
    catch_unwind(|| LAST.try_with(|last| last.borrow().message.as_ptr()).unwrap_or(c"".as_ptr()))
        .unwrap_or(c"".as_ptr())
}

/// The errno behind the last error of this thread (from Xen, xenstore or the system), or
/// 0 when the last call succeeded or its error was not built from one (an argument the
/// library refused itself, say).
#[no_mangle]
pub extern "C" fn xenvcpu_last_errno() -> c_int {
    catch_unwind(|| LAST.try_with(|last| last.borrow().errno).unwrap_or(0)).unwrap_or(0)
}

/// The kind of the last error of this thread: one of the XENVCPU_ERR_* codes, or
/// XENVCPU_OK (0) when the last call succeeded. New codes may be added.
#[no_mangle]
pub extern "C" fn xenvcpu_last_error_code() -> c_int {
    catch_unwind(|| LAST.try_with(|last| last.borrow().code).unwrap_or(XENVCPU_OK)).unwrap_or(XENVCPU_OK)
}
