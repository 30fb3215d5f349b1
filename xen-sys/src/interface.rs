//! [`Interface`]: an owned, open `xc_interface` handle, and why opening one can fail.

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::abi::xc_interface;
use crate::errno::Errno;
use crate::loader::{xenctrl, LoadError, XenCtrl};

/// The device files libxencall opens to issue hypercalls, in the order it tries them.
pub const PRIVCMD_PATHS: [&str; 2] = ["/dev/xen/privcmd", "/proc/xen/privcmd"];

/// Whether any of [`PRIVCMD_PATHS`] exists, i.e. whether this kernel runs on Xen with the
/// privcmd driver available.
pub fn privcmd_present() -> bool {
    PRIVCMD_PATHS.iter().any(|p| Path::new(p).exists())
}

/// Why [`Interface::open`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// No usable libxenctrl (see [`LoadError`] for every name tried).
    Library(LoadError),
    /// Not running on Xen, or the privcmd driver is missing: `ENOENT`, `ENXIO` or `ENODEV`,
    /// or no privcmd device exists at all.
    NoHypervisor {
        /// errno left by `xc_interface_open`.
        errno: Errno,
        /// Whether a privcmd device file exists ([`privcmd_present`]).
        privcmd_present: bool,
    },
    /// `EACCES` / `EPERM`: needs root in a privileged domain (dom0).
    Permission {
        /// errno left by `xc_interface_open`.
        errno: Errno,
    },
    /// Any other failure of `xc_interface_open`.
    Other {
        /// errno left by `xc_interface_open`.
        errno: Errno,
    },
}

impl OpenError {
    /// Classifies a failed `xc_interface_open` by its errno and whether a privcmd device
    /// exists. Without privcmd nothing can work, whatever the errno, so that is
    /// [`NoHypervisor`](Self::NoHypervisor).
    pub fn classify(errno: Errno, privcmd_present: bool) -> Self {
        match errno.raw() {
            _ if !privcmd_present => Self::NoHypervisor { errno, privcmd_present },
            libc::ENOENT | libc::ENXIO | libc::ENODEV => Self::NoHypervisor { errno, privcmd_present },
            libc::EACCES | libc::EPERM => Self::Permission { errno },
            _ => Self::Other { errno },
        }
    }

    /// The errno of a failed `xc_interface_open` (`None` for [`Library`](Self::Library)).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Library(_) => None,
            Self::NoHypervisor { errno, .. } | Self::Permission { errno } | Self::Other { errno } => Some(*errno),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Library(e) => write!(f, "libxenctrl is not available: {e}"),
            Self::NoHypervisor { errno, privcmd_present: false } => {
                write!(f, "not running on a Xen hypervisor: no {} or {} ({errno})", PRIVCMD_PATHS[0], PRIVCMD_PATHS[1])
            }
            Self::NoHypervisor { errno, privcmd_present: true } => {
                write!(f, "the Xen privcmd device exists but the hypervisor interface is unavailable ({errno})")
            }
            Self::Permission { errno } => write!(
                f,
                "permission denied opening the Xen control interface: run as root in a \
                 privileged domain (dom0) ({errno})"
            ),
            Self::Other { errno } => write!(f, "xc_interface_open failed: {errno}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Library(e) => Some(e),
            Self::NoHypervisor { errno, .. } | Self::Permission { errno } | Self::Other { errno } => Some(errno),
        }
    }
}

/// An open libxenctrl handle (`xc_interface *`), closed on drop.
///
/// Opened with null loggers (libxenctrl logs its own errors to stderr) and no flags, so it is
/// reentrant and may be shared between threads. A child process must not use a handle
/// inherited through `fork` (libxenctrl's rule): open a new one there.
pub struct Interface {
    xch: NonNull<xc_interface>,
    lib: &'static XenCtrl,
}

impl Interface {
    /// Loads libxenctrl ([`xenctrl`]) and opens a handle: `xc_interface_open(NULL, NULL, 0)`.
    ///
    /// # Errors
    /// [`OpenError::Library`] when no libxenctrl loads; otherwise the classified errno of
    /// `xc_interface_open` ([`OpenError::classify`]).
    pub fn open() -> Result<Self, OpenError> {
        Self::open_with(xenctrl().map_err(OpenError::Library)?)
    }

    /// Opens a handle with an already loaded table.
    ///
    /// # Errors
    /// The classified errno of `xc_interface_open` ([`OpenError::classify`]).
    pub fn open_with(lib: &'static XenCtrl) -> Result<Self, OpenError> {
        // SAFETY: null loggers are allowed (libxenctrl then logs to stderr); flags 0 asks
        // for a normal reentrant handle. No buffers are involved.
        let raw = unsafe { (lib.xc_interface_open)(ptr::null_mut(), ptr::null_mut(), 0) };
        let errno = Errno::last();
        match NonNull::new(raw) {
            Some(xch) => Ok(Self { xch, lib }),
            None => Err(OpenError::classify(errno, privcmd_present())),
        }
    }

    /// The raw handle, valid for as long as `self` lives. Pass it only to functions of
    /// [`lib`](Self::lib), and never to `xc_interface_close`.
    pub fn as_ptr(&self) -> *mut xc_interface {
        self.xch.as_ptr()
    }

    /// The function table the handle belongs to.
    pub fn lib(&self) -> &'static XenCtrl {
        self.lib
    }
}

impl Drop for Interface {
    fn drop(&mut self) {
        // SAFETY: `xch` came from this table's xc_interface_open, is non-null, and is closed
        // exactly once, here; no borrow of `self` (hence of the handle) outlives the drop.
        // A -1 return still closes the handle, so there is nothing to recover.
        unsafe { (self.lib.xc_interface_close)(self.xch.as_ptr()) };
    }
}

impl fmt::Debug for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interface").field("xch", &self.xch).field("lib", &self.lib.soname()).finish()
    }
}

// SAFETY: the handle is not tied to the thread that opened it: it is a heap object holding
// file descriptors, which may be used and closed from any thread. Moving `Interface` moves
// sole ownership of it.
unsafe impl Send for Interface {}

// SAFETY: xenctrl.h states that only handles opened with XC_OPENFLAG_NON_REENTRANT require
// the caller to serialise calls; `open_with` passes flags 0, so libxenctrl itself makes
// concurrent calls on one handle safe (its per-call error state is per-thread; see
// reference §2 "handles are otherwise usable from several threads"). `&Interface` only
// exposes the raw pointer for such calls; closing needs ownership (Drop).
unsafe impl Sync for Interface {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_without_privcmd_is_always_no_hypervisor() {
        for raw in [libc::ENOENT, libc::EACCES, libc::EINVAL] {
            assert!(matches!(
                OpenError::classify(Errno::new(raw), false),
                OpenError::NoHypervisor { privcmd_present: false, .. }
            ));
        }
    }

    #[test]
    fn classify_with_privcmd_by_errno() {
        let c = |raw| OpenError::classify(Errno::new(raw), true);
        for raw in [libc::ENOENT, libc::ENXIO, libc::ENODEV] {
            assert!(matches!(c(raw), OpenError::NoHypervisor { .. }), "{raw}");
        }
        assert_eq!(c(libc::EACCES), OpenError::Permission { errno: Errno::new(libc::EACCES) });
        assert!(matches!(c(libc::EPERM), OpenError::Permission { .. }));
        assert_eq!(c(libc::ENOMEM), OpenError::Other { errno: Errno::new(libc::ENOMEM) });
        assert_eq!(c(libc::ENOMEM).errno(), Some(Errno::new(libc::ENOMEM)));
    }

    #[test]
    fn messages_say_what_to_do() {
        let perm = OpenError::classify(Errno::new(libc::EACCES), true).to_string();
        assert!(perm.contains("root") && perm.contains("dom0"), "{perm}");
        let none = OpenError::classify(Errno::new(libc::ENOENT), false).to_string();
        assert!(none.contains("/dev/xen/privcmd"), "{none}");
    }

    #[test]
    fn interface_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Interface>();
        assert_send_sync::<&'static XenCtrl>();
    }
}
