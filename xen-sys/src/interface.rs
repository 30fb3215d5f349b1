//! [`Interface`]: an owned, open `xc_interface` handle, and why opening one can fail.

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::abi::{interface_versions, xc_interface, InterfaceVersions, XENVER_version, XenVersion};
use crate::errno::Errno;
use crate::loader::{running_hypervisor_version, xenctrl, LoadError, XenCtrl};
use crate::log::{logger, take_messages, LogMessage};

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
        /// What libxenctrl logged about it (see [`crate::take_messages`]).
        log: Vec<LogMessage>,
    },
    /// `EACCES` / `EPERM`: needs root in a privileged domain (dom0).
    Permission {
        /// errno left by `xc_interface_open`.
        errno: Errno,
        /// What libxenctrl logged about it, e.g. `xencall: Could not obtain handle on
        /// privileged command interface: Permission denied`.
        log: Vec<LogMessage>,
    },
    /// Any other failure of `xc_interface_open`.
    Other {
        /// errno left by `xc_interface_open`.
        errno: Errno,
        /// What libxenctrl logged about it.
        log: Vec<LogMessage>,
    },
    /// The loaded library and the running hypervisor come from releases with different
    /// domctl/sysctl interface versions: every domctl/sysctl would fail (Xen answers
    /// `EACCES`). Decided right after `xc_interface_open`, before any other call.
    VersionMismatch {
        /// The loaded library's soname.
        soname: String,
        /// The library's release and its interface versions.
        library: InterfaceVersions,
        /// The running hypervisor's release and its interface versions.
        hypervisor: InterfaceVersions,
    },
}

impl OpenError {
    /// Classifies a failed `xc_interface_open` by its errno and whether a privcmd device
    /// exists. Without privcmd nothing can work, whatever the errno, so that is
    /// [`NoHypervisor`](Self::NoHypervisor).
    /// The variant's `log` is empty; [`Interface::open_with`] fills it
    /// ([`with_log`](Self::with_log)).
    pub fn classify(errno: Errno, privcmd_present: bool) -> Self {
        let log = Vec::new();
        match errno.raw() {
            _ if !privcmd_present => Self::NoHypervisor { errno, privcmd_present, log },
            libc::ENOENT | libc::ENXIO | libc::ENODEV => Self::NoHypervisor { errno, privcmd_present, log },
            libc::EACCES | libc::EPERM => Self::Permission { errno, log },
            _ => Self::Other { errno, log },
        }
    }

    /// The same error with `messages` as what libxenctrl logged (variants without a log are
    /// returned unchanged).
    pub fn with_log(mut self, messages: Vec<LogMessage>) -> Self {
        if let Self::NoHypervisor { log, .. } | Self::Permission { log, .. } | Self::Other { log, .. } = &mut self {
            *log = messages;
        }
        self
    }

    /// What libxenctrl logged about the failure (empty when nothing, or not applicable).
    pub fn log(&self) -> &[LogMessage] {
        match self {
            Self::NoHypervisor { log, .. } | Self::Permission { log, .. } | Self::Other { log, .. } => log,
            Self::Library(_) | Self::VersionMismatch { .. } => &[],
        }
    }

    /// The errno of a failed `xc_interface_open` (`None` for [`Library`](Self::Library) and
    /// [`VersionMismatch`](Self::VersionMismatch)).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Library(_) | Self::VersionMismatch { .. } => None,
            Self::NoHypervisor { errno, .. } | Self::Permission { errno, .. } | Self::Other { errno, .. } => {
                Some(*errno)
            }
        }
    }
}

/// `Some(mismatch)` when a library of release `library` cannot talk to a hypervisor of
/// release `hypervisor`: both are known ([`crate::INTERFACE_VERSIONS`]) and their domctl or
/// sysctl interface versions differ. `None` when they match or either is unknown (then the
/// hypervisor's `EACCES` on the first domctl/sysctl is the only evidence).
pub fn interface_mismatch(
    library: XenVersion,
    hypervisor: XenVersion,
) -> Option<(InterfaceVersions, InterfaceVersions)> {
    let (lib, hv) = (interface_versions(library)?, interface_versions(hypervisor)?);
    (lib.domctl != hv.domctl || lib.sysctl != hv.sysctl).then_some((lib, hv))
}

/// `Xen 4.17 (domctl interface 0x15, sysctl 0x15)`.
fn describe_versions(iv: &InterfaceVersions) -> String {
    format!("Xen {} (domctl interface {:#x}, sysctl {:#x})", iv.release, iv.domctl, iv.sysctl)
}

/// `: libxenctrl said: a; b` when there are messages.
fn write_log(f: &mut fmt::Formatter<'_>, log: &[LogMessage]) -> fmt::Result {
    for (i, message) in log.iter().enumerate() {
        f.write_str(if i == 0 { "; libxenctrl said: " } else { "; " })?;
        write!(f, "{message}")?;
    }
    Ok(())
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Library(e) => return write!(f, "libxenctrl is not available: {e}"),
            Self::NoHypervisor { errno, privcmd_present: false, .. } => {
                write!(f, "not running on a Xen hypervisor: no {} or {} ({errno})", PRIVCMD_PATHS[0], PRIVCMD_PATHS[1])?
            }
            Self::NoHypervisor { errno, privcmd_present: true, .. } => {
                write!(f, "the Xen privcmd device exists but the hypervisor interface is unavailable ({errno})")?
            }
            Self::Permission { errno, .. } => write!(
                f,
                "permission denied opening the Xen control interface: run as root in a \
                 privileged domain (dom0) ({errno})"
            )?,
            Self::Other { errno, .. } => write!(f, "xc_interface_open failed: {errno}")?,
            Self::VersionMismatch { soname, library, hypervisor } => {
                return write!(
                    f,
                    "the loaded {soname} is {} but the running hypervisor is {}: their interface \
                     versions differ (install the libxenctrl of Xen {}, or set {} to it)",
                    describe_versions(library),
                    describe_versions(hypervisor),
                    hypervisor.release,
                    crate::LIBXENCTRL_ENV
                )
            }
        }
        write_log(f, self.log())
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Library(e) => Some(e),
            Self::VersionMismatch { .. } => None,
            Self::NoHypervisor { errno, .. } | Self::Permission { errno, .. } | Self::Other { errno, .. } => {
                Some(errno)
            }
        }
    }
}

/// An open libxenctrl handle (`xc_interface *`), closed on drop.
///
/// Opened with xen-sys's logger ([`crate::logger`]: libxenctrl's messages are captured,
/// never printed) and no flags, so it is reentrant and may be shared between threads. A
/// child process must not use a handle inherited through `fork` (libxenctrl's rule): open a
/// new one there.
pub struct Interface {
    xch: NonNull<xc_interface>,
    lib: &'static XenCtrl,
    hypervisor: Option<XenVersion>,
}

impl Interface {
    /// Loads libxenctrl ([`xenctrl`]) and opens a handle ([`open_with`](Self::open_with)).
    ///
    /// # Errors
    /// [`OpenError::Library`] when no libxenctrl loads; otherwise as
    /// [`open_with`](Self::open_with).
    pub fn open() -> Result<Self, OpenError> {
        Self::open_with(xenctrl().map_err(OpenError::Library)?)
    }

    /// Opens a handle with an already loaded table: `xc_interface_open(logger(), logger(),
    /// 0)`, then asks the hypervisor its release (`xc_version(XENVER_version)`, which
    /// fills nothing; `/sys/hypervisor/version` if that fails) and compares interface
    /// versions ([`interface_mismatch`]) before any other call.
    ///
    /// # Errors
    /// The classified errno of `xc_interface_open` ([`OpenError::classify`]) with what
    /// libxenctrl logged about it; [`OpenError::VersionMismatch`] when the library and the
    /// hypervisor are known to speak different interface versions.
    pub fn open_with(lib: &'static XenCtrl) -> Result<Self, OpenError> {
        let _ = take_messages();
        // SAFETY: `logger()` is a static xentoollog logger valid for the whole process
        // (libxenctrl keeps the pointer for the handle's life and never frees it: it only
        // destroys loggers it created); flags 0 asks for a normal reentrant handle. No
        // buffers are involved.
        let raw = unsafe { (lib.xc_interface_open)(logger(), logger(), 0) };
        let errno = Errno::last();
        let Some(xch) = NonNull::new(raw) else {
            return Err(OpenError::classify(errno, privcmd_present()).with_log(take_messages()));
        };
        let mut iface = Self { xch, lib, hypervisor: None };
        // SAFETY: the handle is open; XENVER_version with a null argument only returns
        // `(major << 16) | minor` and writes nothing.
        let raw_version = unsafe { (lib.xc_version)(iface.as_ptr(), XENVER_version, ptr::null_mut()) };
        iface.hypervisor = XenVersion::from_xenver(raw_version).or_else(running_hypervisor_version);
        if let (Some(library), Some(hypervisor)) = (lib.release(), iface.hypervisor) {
            if let Some((library, hypervisor)) = interface_mismatch(library, hypervisor) {
                return Err(OpenError::VersionMismatch { soname: lib.soname().to_owned(), library, hypervisor });
            }
        }
        Ok(iface)
    }

    /// The running hypervisor's release, as it answered at open (or from
    /// `/sys/hypervisor/version`); `None` if neither said.
    pub fn hypervisor_release(&self) -> Option<XenVersion> {
        self.hypervisor
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
        assert_eq!(c(libc::EACCES), OpenError::Permission { errno: Errno::new(libc::EACCES), log: vec![] });
        assert!(matches!(c(libc::EPERM), OpenError::Permission { .. }));
        assert_eq!(c(libc::ENOMEM), OpenError::Other { errno: Errno::new(libc::ENOMEM), log: vec![] });
        assert_eq!(c(libc::ENOMEM).errno(), Some(Errno::new(libc::ENOMEM)));
    }

    #[test]
    fn log_is_attached_and_shown() {
        let said = LogMessage {
            level: crate::LogLevel::Error,
            text: "xencall: Could not obtain handle on privileged command interface: Permission denied".into(),
        };
        let e = OpenError::classify(Errno::new(libc::EACCES), true).with_log(vec![said.clone()]);
        assert_eq!(e.log(), [said]);
        let text = e.to_string();
        assert!(text.ends_with("; libxenctrl said: xencall: Could not obtain handle on privileged command interface: Permission denied"), "{text}");
    }

    #[test]
    fn interface_mismatch_compares_domctl_and_sysctl_versions() {
        let v = |minor| XenVersion::new(4, minor);
        assert!(interface_mismatch(v(17), v(17)).is_none());
        // 4.19 and 4.20 share both interface versions: a match.
        assert!(interface_mismatch(v(19), v(20)).is_none());
        let (lib, hv) = interface_mismatch(v(18), v(17)).expect("domctl 0x16 vs 0x15");
        assert_eq!((lib.domctl, hv.domctl), (0x16, 0x15));
        // 4.20 vs 4.21: same domctl, different sysctl.
        assert!(interface_mismatch(v(20), v(21)).is_some());
        // Unknown hypervisor release: undecided here.
        assert!(interface_mismatch(v(17), v(23)).is_none());
        let e = OpenError::VersionMismatch { soname: "libxenctrl.so.4.18".into(), library: lib, hypervisor: hv };
        let text = e.to_string();
        assert!(
            text.contains("libxenctrl.so.4.18 is Xen 4.18 (domctl interface 0x16, sysctl 0x15)")
                && text.contains("running hypervisor is Xen 4.17 (domctl interface 0x15"),
            "{text}"
        );
        assert_eq!(e.errno(), None);
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
