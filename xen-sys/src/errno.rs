//! [`Errno`]: the error number a libxenctrl call left behind.

use std::{fmt, io};

/// An `errno` value, as set by a failing libxenctrl call.
///
/// Capture it immediately after the call, with nothing in between:
///
/// ```no_run
/// use xen_sys::{xc_physinfo_t, Errno, Interface};
///
/// fn physinfo(xc: &Interface) -> Result<xc_physinfo_t, Errno> {
///     let mut info = xc_physinfo_t::default();
///     // SAFETY: `xc` is open; `info` is one writable xc_physinfo_t.
///     let ret = unsafe { (xc.lib().xc_physinfo)(xc.as_ptr(), &mut info) };
///     if ret < 0 {
///         return Err(Errno::last());
///     }
///     Ok(info)
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(i32);

impl Errno {
    /// Wraps a raw `errno` value such as `libc::ESRCH`.
    pub const fn new(raw: i32) -> Self {
        Self(raw)
    }

    /// The calling thread's current `errno`.
    pub fn last() -> Self {
        Self(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The raw value, for matching against `libc::E*` constants.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&io::Error::from_raw_os_error(self.0), f)
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> Self {
        io::Error::from_raw_os_error(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_reads_the_thread_errno() {
        // SAFETY: closing an fd that is certainly not open has no effect but setting errno.
        let ret = unsafe { libc::close(-1) };
        let e = Errno::last();
        assert_eq!(ret, -1);
        assert_eq!(e, Errno::new(libc::EBADF));
        assert_eq!(e.raw(), libc::EBADF);
    }

    #[test]
    fn display_and_io_conversion_use_the_os_text() {
        let e = Errno::new(libc::ESRCH);
        assert!(e.to_string().contains("No such process"), "{e}");
        let io: io::Error = e.into();
        assert_eq!(io.raw_os_error(), Some(libc::ESRCH));
    }
}
