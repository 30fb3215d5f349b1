//! Run-time loading of libxenctrl into a table of function pointers ([`XenCtrl`]).
//!
//! libxenctrl has no stable ABI: each Xen release ships `libxenctrl.so.4.<minor>`, and only
//! the -dev package has the unversioned `libxenctrl.so`. So nothing links against it at
//! build time. [`xenctrl`] picks the file at run time, in this order
//! ([`candidates`] is the pure function that makes the list):
//!
//! 1. the path in `$XENVCPU_LIBXENCTRL` ([`LIBXENCTRL_ENV`]), if set and non-empty, and
//!    nothing else. It is ignored (with a warning through the log hook, see
//!    [`secure_env_var`]) in a process running with elevated privileges (`AT_SECURE`:
//!    set-user-ID, set-group-ID, file capabilities), and refused if it is a relative path
//!    (a bare soname without `/` is fine: the dynamic loader searches for it);
//! 2. otherwise the release of the running hypervisor (`/sys/hypervisor/version/{major,minor}`
//!    → `libxenctrl.so.4.17`) if it is a supported one, then every supported release, newest
//!    first (4.22 … 4.17), then `libxenctrl.so`, then the running hypervisor's release if it
//!    is *not* supported (only so that the error can say that this release was found and
//!    refused).
//!
//! **Only supported releases are used.** libxenctrl has no stable ABI: `xc_physinfo` and
//! `xc_domain_getinfolist` write structs sized by the library's own headers into buffers
//! sized by ours. So a library is used only if its release, read from its `DT_SONAME`
//! (`libxenctrl.so.4.17` → 4.17, even when opened through `libxenctrl.so` or a path), is in
//! [`INTERFACE_VERSIONS`] (4.17 … 4.22). This is checked after `dlopen` and before any
//! symbol is resolved, so no function of another release can ever be called; a path is
//! checked before `dlopen` too. A library of another release is
//! [`AttemptFailure::UnsupportedRelease`].
//!
//! The first file that opens (`RTLD_NOW | RTLD_LOCAL`), is of a supported release and has
//! every symbol wins; its handle is never closed. Failures are collected into a
//! [`LoadError`] naming each name tried; [`LoadError::kind`] gives the decisive reason.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::abi::{
    interface_versions, xc_cpumap_t, xc_cpupoolinfo_t, xc_cputopo_t, xc_domaininfo_t, xc_interface, xc_nodemap_t,
    xc_physinfo_t, xc_vcpuinfo_t, xentoollog_logger, XenVersion, INTERFACE_VERSIONS,
};
use crate::log::{emit, LogLevel};

/// Environment variable that names the libxenctrl to load (an absolute path or a soname).
/// When set and non-empty it is the only candidate: an explicit choice never falls back
/// silently. It must name a libxenctrl of a release in [`INTERFACE_VERSIONS`] (anything else
/// is refused); a relative path is refused; in a set-user-ID (`AT_SECURE`) process the
/// variable is ignored ([`secure_env_var`]).
pub const LIBXENCTRL_ENV: &str = "XENVCPU_LIBXENCTRL";

/// The unversioned name, present only with the -dev package; tried last.
pub const UNVERSIONED_LIBXENCTRL: &str = "libxenctrl.so";

/// Directory where a Xen guest kernel (dom0 included) publishes the hypervisor's version.
pub const SYSFS_HYPERVISOR_VERSION: &str = "/sys/hypervisor/version";

/// Why a name is on the candidate list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandidateOrigin {
    /// Given in [`LIBXENCTRL_ENV`].
    EnvOverride,
    /// The release of the running hypervisor (listed last, and refused when loaded, if it is
    /// not in [`INTERFACE_VERSIONS`]).
    RunningHypervisor(XenVersion),
    /// A release this crate knows ([`INTERFACE_VERSIONS`]).
    KnownRelease(XenVersion),
    /// The unversioned development symlink.
    Unversioned,
}

/// A file name (or path) to hand to `dlopen`, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Passed to `dlopen` as is: a path if it contains a `/`, else a name searched for.
    pub name: OsString,
    /// Why it is tried.
    pub origin: CandidateOrigin,
}

impl Candidate {
    /// A candidate with the given name and origin.
    pub fn new(name: impl Into<OsString>, origin: CandidateOrigin) -> Self {
        Self { name: name.into(), origin }
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name.to_string_lossy())?;
        match self.origin {
            CandidateOrigin::EnvOverride => write!(f, " (from ${LIBXENCTRL_ENV})"),
            CandidateOrigin::RunningHypervisor(v) => write!(f, " (running hypervisor is {v})"),
            CandidateOrigin::KnownRelease(_) => Ok(()),
            CandidateOrigin::Unversioned => write!(f, " (unversioned, from libxen-dev)"),
        }
    }
}

/// The list of libraries to try, in order. Pure: reads neither the environment nor the
/// file system.
///
/// * `env_override`: the value of [`LIBXENCTRL_ENV`]; if `Some` and non-empty it is the only
///   candidate.
/// * `hypervisor`: the running hypervisor's release, if known. A supported one goes first
///   and is not repeated later; an unsupported one goes last, after `libxenctrl.so` (it will
///   be refused if found, and the error will say so).
pub fn candidates(env_override: Option<&OsStr>, hypervisor: Option<XenVersion>) -> Vec<Candidate> {
    if let Some(path) = env_override.filter(|p| !p.is_empty()) {
        return vec![Candidate::new(path, CandidateOrigin::EnvOverride)];
    }
    let mut list = Vec::with_capacity(INTERFACE_VERSIONS.len() + 2);
    let supported_hypervisor = hypervisor.filter(|&v| interface_versions(v).is_some());
    if let Some(v) = supported_hypervisor {
        list.push(Candidate::new(v.libxenctrl_soname(), CandidateOrigin::RunningHypervisor(v)));
    }
    for known in INTERFACE_VERSIONS.iter().map(|iv| iv.release) {
        if Some(known) != hypervisor {
            list.push(Candidate::new(known.libxenctrl_soname(), CandidateOrigin::KnownRelease(known)));
        }
    }
    list.push(Candidate::new(UNVERSIONED_LIBXENCTRL, CandidateOrigin::Unversioned));
    if let Some(v) = hypervisor.filter(|_| supported_hypervisor.is_none()) {
        list.push(Candidate::new(v.libxenctrl_soname(), CandidateOrigin::RunningHypervisor(v)));
    }
    list
}

/// The candidate list for this process: [`candidates`] applied to `$XENVCPU_LIBXENCTRL`
/// (read with [`secure_env_var`], so ignored in a set-user-ID process) and
/// [`running_hypervisor_version`].
pub fn default_candidates() -> Vec<Candidate> {
    let env = secure_env_var(LIBXENCTRL_ENV);
    candidates(env.as_deref(), running_hypervisor_version())
}

/// The value of the environment variable `name`, unless this process runs with elevated
/// privileges (`getauxval(AT_SECURE) != 0`: set-user-ID, set-group-ID, file capabilities),
/// where an environment chosen by a less privileged user must not pick libraries, sockets
/// or backends. Then a set variable is ignored: `None`, and a one-line warning goes to the
/// log hook ([`crate::set_log_hook`]; nothing is printed without one). Unset gives `None`
/// silently. The value is returned as is (possibly empty).
pub fn secure_env_var(name: &str) -> Option<OsString> {
    // SAFETY: getauxval has no preconditions; it reads the auxiliary vector the kernel gave
    // the process and returns 0 for an absent entry.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    secure_env_var_in(name, secure)
}

fn secure_env_var_in(name: &str, secure: bool) -> Option<OsString> {
    let value = std::env::var_os(name)?;
    if secure {
        emit(
            LogLevel::Warn,
            &format!("ignoring ${name}: the process runs with elevated privileges (AT_SECURE, e.g. set-user-ID)"),
        );
        return None;
    }
    Some(value)
}

/// The running hypervisor's release from [`SYSFS_HYPERVISOR_VERSION`], or `None` when not
/// running on Xen (or sysfs is not mounted).
pub fn running_hypervisor_version() -> Option<XenVersion> {
    hypervisor_version_in(Path::new(SYSFS_HYPERVISOR_VERSION))
}

/// Reads `<dir>/major` and `<dir>/minor` (decimal, optional trailing newline).
pub(crate) fn hypervisor_version_in(dir: &Path) -> Option<XenVersion> {
    let read = |name: &str| -> Option<u32> { std::fs::read_to_string(dir.join(name)).ok()?.trim().parse().ok() };
    Some(XenVersion::new(read("major")?, read("minor")?))
}

/// Why one candidate was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// `dlopen` failed; `message` is `dlerror()`'s text.
    Open {
        /// The dynamic loader's message.
        message: String,
    },
    /// The file opened but lacks a function this crate needs.
    MissingSymbol {
        /// The missing function.
        symbol: &'static str,
        /// The file that was opened, when the loader could tell.
        file: Option<PathBuf>,
        /// `dlerror()`'s text.
        message: String,
    },
    /// The file is not the libxenctrl of a supported release (its `DT_SONAME` is not
    /// `libxenctrl.so.<release>` with a release in [`INTERFACE_VERSIONS`]); none of its
    /// functions was resolved or called.
    UnsupportedRelease {
        /// The soname read from the file (the file name if it has none).
        soname: String,
        /// The release the soname names, if it names one.
        found: Option<XenVersion>,
        /// The file, when known.
        file: Option<PathBuf>,
    },
    /// A relative path (contains `/` but does not start with it): `dlopen` would resolve it
    /// against the working directory, so it is refused without opening anything.
    RelativePath,
    /// The file is not the library asked for: its `DT_SONAME` is not `expected` (for
    /// libxenguest: not the release of the loaded libxenctrl). None of its functions was
    /// resolved or called.
    WrongLibrary {
        /// The soname read from the file (the file name if it has none).
        soname: String,
        /// The soname that was required.
        expected: String,
        /// The file, when known.
        file: Option<PathBuf>,
    },
}

/// The releases in [`INTERFACE_VERSIONS`], oldest first: `4.17, 4.18, …`.
fn supported_list() -> String {
    let list: Vec<String> = INTERFACE_VERSIONS.iter().rev().map(|iv| iv.release.to_string()).collect();
    list.join(", ")
}

/// One rejected candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// What was tried.
    pub candidate: Candidate,
    /// Why it was rejected.
    pub failure: AttemptFailure,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            AttemptFailure::Open { message } => write!(f, "{}: {message}", self.candidate),
            AttemptFailure::MissingSymbol { symbol, file, message } => {
                write!(f, "{}: symbol `{symbol}` missing", self.candidate)?;
                if let Some(file) = file {
                    write!(f, " in {}", file.display())?;
                }
                write!(f, ": {message}")
            }
            AttemptFailure::UnsupportedRelease { soname, found, file } => {
                write!(f, "{}: ", self.candidate)?;
                match found {
                    Some(v) => write!(f, "{soname} is Xen {v}")?,
                    None => write!(f, "{soname} is not a versioned libxenctrl (libxenctrl.so.<major>.<minor>)")?,
                }
                if let Some(file) = file {
                    write!(f, " ({})", file.display())?;
                }
                write!(f, "; xenvcpu supports Xen {}", supported_list())
            }
            AttemptFailure::WrongLibrary { soname, expected, file } => {
                write!(f, "{}: {soname} is not {expected}", self.candidate)?;
                if let Some(file) = file {
                    write!(f, " ({})", file.display())?;
                }
                Ok(())
            }
            AttemptFailure::RelativePath => write!(
                f,
                "{}: relative paths are refused (dlopen would resolve them against the working \
                 directory): give an absolute path or a bare soname",
                self.candidate
            ),
        }
    }
}

/// The decisive reason a [`LoadError`] happened ([`LoadError::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// No candidate could be opened: libxenctrl is not installed (or not where named).
    NotFound,
    /// A libxenctrl was found but its release is not supported
    /// ([`AttemptFailure::UnsupportedRelease`]; see [`LoadError::unsupported_release`]),
    /// or a libxenguest of another release than the loaded libxenctrl's
    /// ([`AttemptFailure::WrongLibrary`]).
    UnsupportedRelease,
    /// A library of a supported release lacks a function ([`AttemptFailure::MissingSymbol`]).
    MissingSymbol,
    /// A relative path was given ([`AttemptFailure::RelativePath`]).
    RelativePath,
}

/// Which library a [`LoadError`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadTarget {
    /// libxenctrl ([`xenctrl`]).
    XenCtrl,
    /// libxenguest, for CPU featuresets and CPUID policies ([`crate::xenguest`]): it must
    /// be of the release of the libxenctrl already loaded.
    XenGuest {
        /// The release required (the loaded libxenctrl's).
        release: XenVersion,
        /// The loaded libxenctrl's soname.
        libxenctrl: String,
    },
}

/// No usable libxenctrl (or libxenguest): every candidate, with the reason each was
/// rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    attempts: Vec<Attempt>,
    target: LoadTarget,
}

impl LoadError {
    /// The library that could not be loaded.
    pub fn target(&self) -> &LoadTarget {
        &self.target
    }

    /// A libxenguest load failure with these attempts.
    pub(crate) fn xenguest(attempts: Vec<Attempt>, release: XenVersion, libxenctrl: &str) -> Self {
        Self { attempts, target: LoadTarget::XenGuest { release, libxenctrl: libxenctrl.to_owned() } }
    }

    /// Every candidate tried, in order, with its failure.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The decisive reason, most actionable first: a relative path, else a library of an
    /// unsupported release, else a missing symbol, else nothing found.
    pub fn kind(&self) -> LoadErrorKind {
        let any = |pred: fn(&AttemptFailure) -> bool| self.attempts.iter().any(|a| pred(&a.failure));
        if any(|f| matches!(f, AttemptFailure::RelativePath)) {
            LoadErrorKind::RelativePath
        } else if any(|f| matches!(f, AttemptFailure::UnsupportedRelease { .. } | AttemptFailure::WrongLibrary { .. }))
        {
            LoadErrorKind::UnsupportedRelease
        } else if any(|f| matches!(f, AttemptFailure::MissingSymbol { .. })) {
            LoadErrorKind::MissingSymbol
        } else {
            LoadErrorKind::NotFound
        }
    }

    /// The first candidate refused because of its release, if any: then a libxenctrl is
    /// installed, but of a release this crate does not support.
    pub fn unsupported_release(&self) -> Option<&Attempt> {
        self.attempts.iter().find(|a| matches!(a.failure, AttemptFailure::UnsupportedRelease { .. }))
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let LoadTarget::XenGuest { release, libxenctrl } = &self.target {
            write!(
                f,
                "cannot load libxenguest of Xen {release} (CPU featuresets and CPUID policies \
                 are libxenguest calls; it must be the release of the loaded {libxenctrl}); tried "
            )?;
            for (i, attempt) in self.attempts.iter().enumerate() {
                if i > 0 {
                    f.write_str("; ")?;
                }
                write!(f, "{attempt}")?;
            }
            return write!(
                f,
                ". Install Xen {release}'s tools libraries: Debian's libxenmisc{release} ships \
                 libxenguest.so.{release} next to libxenctrl.so.{release}"
            );
        }
        if let Some(Attempt { failure: AttemptFailure::UnsupportedRelease { soname, found, .. }, .. }) =
            self.unsupported_release()
        {
            match found {
                Some(v) => write!(f, "no supported libxenctrl: {soname} is Xen {v}")?,
                None => write!(f, "no supported libxenctrl: {soname} is not a versioned libxenctrl")?,
            }
            write!(f, "; xenvcpu supports Xen {}. ", supported_list())?;
        }
        f.write_str("cannot load libxenctrl; tried ")?;
        if self.attempts.is_empty() {
            f.write_str("nothing")?;
        }
        for (i, attempt) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        write!(
            f,
            ". Install the Xen tools libraries of a supported release (e.g. Debian's \
             libxenmisc4.17) or set {LIBXENCTRL_ENV} to the library's absolute path"
        )
    }
}

impl std::error::Error for LoadError {}

/// Where the loaded library came from.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) requested: Candidate,
    pub(crate) file: Option<PathBuf>,
    pub(crate) soname: String,
    pub(crate) skipped: Vec<Attempt>,
}

/// Declares a function table once: the struct, the list of symbol names, the resolver
/// and (for unit tests) a constructor with aborting stubs. Used for libxenctrl
/// ([`XenCtrl`]) and libxenguest ([`crate::XenGuest`]).
macro_rules! function_table {
    (
        $(#[$meta:meta])*
        pub struct $table:ident;
        $(
            $(#[doc = $doc:literal])*
            fn $name:ident($($arg:ident: $argty:ty),* $(,)?) -> $ret:ty;
        )*
    ) => {
        $(#[$meta])*
        pub struct $table {
            $(
                $(#[doc = $doc])*
                pub $name: unsafe extern "C" fn($($arg: $argty),*) -> $ret,
            )*
            pub(crate) origin: $crate::loader::Origin,
        }

        impl $table {
            /// The C names of every function in the table, in declaration order.
            pub const SYMBOLS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Resolves every symbol from `handle`.
            ///
            /// # Safety
            /// `handle` is a live `dlopen` handle of a library whose functions have the
            /// prototypes declared here (true for the releases in `INTERFACE_VERSIONS`).
            unsafe fn resolve(
                handle: std::ptr::NonNull<std::ffi::c_void>,
                origin: $crate::loader::Origin,
            ) -> Result<Self, (&'static str, String)> {
                Ok(Self {
                    $(
                        $name: {
                            let name = concat!(stringify!($name), "\0");
                            // SAFETY: the caller guarantees `handle` is live.
                            let sym = unsafe { $crate::loader::lookup(handle, name) }
                                .map_err(|msg| (stringify!($name), msg))?;
                            // SAFETY: `sym` is the non-null address of the function
                            // `$name` in the library, whose C prototype is this pointer type
                            // (the caller guarantees the release; tests/layout.rs checks the
                            // prototype); data and function pointers have the same size on
                            // x86_64 Linux.
                            unsafe {
                                std::mem::transmute::<
                                    *mut std::ffi::c_void,
                                    unsafe extern "C" fn($($argty),*) -> $ret,
                                >(sym.as_ptr())
                            }
                        },
                    )*
                    origin,
                })
            }

            /// A table whose functions all abort, for unit tests that replace a few.
            #[cfg(test)]
            pub(crate) fn stubbed() -> Self {
                $(
                    unsafe extern "C" fn $name($($arg: $argty),*) -> $ret {
                        let _ = ($($arg,)*);
                        std::process::abort()
                    }
                )*
                Self {
                    $($name,)*
                    origin: $crate::loader::Origin {
                        requested: $crate::loader::Candidate::new(
                            "stub",
                            $crate::loader::CandidateOrigin::EnvOverride,
                        ),
                        file: None,
                        soname: "stub".into(),
                        skipped: Vec::new(),
                    },
                }
            }
        }
    };
}
pub(crate) use function_table;

function_table! {
    /// The libxenctrl functions xenvcpu uses, resolved from one loaded library.
    ///
    /// Get the process-wide table with [`xenctrl`]. Each field is the C function of the
    /// same name, with the prototype of `vendor-headers/xenvcpu_xenctrl.h` (checked
    /// against Xen's `<xenctrl.h>` by `tests/layout.rs`). Calling one is `unsafe`: the
    /// caller upholds the contract written on the field, above all the buffer sizes.
    /// Every `xch` must come from this table's own `xc_interface_open` and still be
    /// open ([`crate::Interface`] guarantees both). Unless noted, a function returns
    /// a negative value (or null) on failure and sets `errno`: read it with
    /// [`crate::Errno::last`] right after the call.
    pub struct XenCtrl;

    /// `xc_interface_open(logger, dombuild_logger, open_flags)`: opens a handle on the
    /// hypervisor (privcmd and the other Xen devices).
    ///
    /// Pass [`crate::logger`] as both loggers (a null one makes libxenctrl print its
    /// messages to stderr) and flags `0`: a handle opened
    /// without [`XC_OPENFLAG_NON_REENTRANT`](crate::XC_OPENFLAG_NON_REENTRANT) may be used
    /// from several threads at once. Returns null with `errno` set on failure: `ENOENT`
    /// when there is no privcmd device (not running on Xen), `EACCES` when not root.
    /// Each handle must be closed once with `xc_interface_close`, and must not be used by a
    /// child after `fork`. Prefer [`crate::Interface::open`], which does all this.
    fn xc_interface_open(
        logger: *mut xentoollog_logger,
        dombuild_logger: *mut xentoollog_logger,
        open_flags: c_uint,
    ) -> *mut xc_interface;

    /// `xc_interface_close(xch)`: closes a handle from `xc_interface_open` (even when it
    /// returns -1). The handle must not be used afterwards.
    fn xc_interface_close(xch: *mut xc_interface) -> c_int;

    /// `xc_version(xch, cmd, arg)`: with `cmd` = [`XENVER_version`](crate::XENVER_version)
    /// and a null `arg`, returns the running hypervisor's `(major << 16) | minor`
    /// ([`XenVersion::from_xenver`]). Other commands write to `arg` and are not used here.
    fn xc_version(xch: *mut xc_interface, cmd: c_int, arg: *mut c_void) -> c_int;

    /// `xc_get_cpumap_size(xch)`: `(physinfo.max_cpu_id + 1 + 7) / 8`, the byte size of every
    /// [`xc_cpumap_t`] passed to the affinity calls; -1 on failure. See
    /// [`crate::cpumap_size`].
    fn xc_get_cpumap_size(xch: *mut xc_interface) -> c_int;

    /// `xc_physinfo(xch, info)`: writes the whole [`xc_physinfo_t`] at `info` (a valid
    /// pointer to one struct) and returns 0.
    fn xc_physinfo(xch: *mut xc_interface, info: *mut xc_physinfo_t) -> c_int;

    /// `xc_cputopoinfo(xch, max_cpus, cputopo)`: per-CPU core/socket/node.
    ///
    /// In: `*max_cpus` is the number of [`xc_cputopo_t`] elements at `cputopo`; libxenctrl
    /// writes up to that many. A null `cputopo` (with `*max_cpus == 0`) asks for the count
    /// only. Out: `*max_cpus` is the number of elements written (or needed): the highest
    /// online CPU id + 1. Returns 0.
    fn xc_cputopoinfo(
        xch: *mut xc_interface,
        max_cpus: *mut c_uint,
        cputopo: *mut xc_cputopo_t,
    ) -> c_int;

    /// `xc_domain_getinfolist(xch, first_domain, max_domains, info)`: describes up to
    /// `max_domains` existing domains with id `>= first_domain`, in id order, into the
    /// array at `info` (room for `max_domains` elements). Returns the number written.
    ///
    /// The first element is the *next existing* domain, not necessarily `first_domain`:
    /// check [`xc_domaininfo_t::domain`], or use [`crate::getinfo_one`]. Present in every
    /// release (unlike `xc_domain_getinfo`, removed in 4.18, and
    /// `xc_domain_getinfo_single`, added in 4.18).
    fn xc_domain_getinfolist(
        xch: *mut xc_interface,
        first_domain: u32,
        max_domains: c_uint,
        info: *mut xc_domaininfo_t,
    ) -> c_int;

    /// `xc_vcpu_getinfo(xch, domid, vcpu, info)`: writes one vCPU's [`xc_vcpuinfo_t`] at
    /// `info`. Fails with `EINVAL` when `vcpu` is at or beyond the domain's vCPU count and
    /// `ESRCH` when the domain or vCPU does not exist. libxenctrl truncates `vcpu` to 16
    /// bits: keep it below 65536.
    fn xc_vcpu_getinfo(
        xch: *mut xc_interface,
        domid: u32,
        vcpu: u32,
        info: *mut xc_vcpuinfo_t,
    ) -> c_int;

    /// `xc_vcpu_setaffinity(xch, domid, vcpu, cpumap_hard_inout, cpumap_soft_inout, flags)`:
    /// sets the hard and/or soft affinity chosen by `flags`
    /// ([`XEN_VCPUAFFINITY_HARD`](crate::XEN_VCPUAFFINITY_HARD) | `SOFT`, optionally
    /// `FORCE`).
    ///
    /// **Buffers:** each map selected by `flags` must be non-null and exactly
    /// `xc_get_cpumap_size()` bytes: libxenctrl reads that many bytes and, on success,
    /// writes the *effective* affinity (hard ∩ online CPUs of the pool; soft ∩ hard ∩
    /// online) back over the same bytes. A shorter buffer is an out-of-bounds access. A map
    /// not selected may be null. Errors: `EINVAL` (empty effective hard map, bad vCPU, null
    /// selected map), `ESRCH`, `EBUSY` (guest pin override active, use `FORCE`).
    fn xc_vcpu_setaffinity(
        xch: *mut xc_interface,
        domid: u32,
        vcpu: c_int,
        cpumap_hard_inout: xc_cpumap_t,
        cpumap_soft_inout: xc_cpumap_t,
        flags: u32,
    ) -> c_int;

    /// `xc_vcpu_getaffinity(xch, domid, vcpu, cpumap_hard, cpumap_soft, flags)`: reads the
    /// affinity maps chosen by `flags` as they were set (not intersected with online CPUs).
    ///
    /// **Buffers:** each map selected by `flags` must be non-null and exactly
    /// `xc_get_cpumap_size()` bytes; libxenctrl writes that many. A map not selected may be
    /// null.
    fn xc_vcpu_getaffinity(
        xch: *mut xc_interface,
        domid: u32,
        vcpu: c_int,
        cpumap_hard: xc_cpumap_t,
        cpumap_soft: xc_cpumap_t,
        flags: u32,
    ) -> c_int;

    /// `xc_domain_max_vcpus(xch, domid, max)`: `XEN_DOMCTL_max_vcpus`. Since Xen 4.12 a
    /// domain's vCPU count is fixed when it is created: this succeeds only when `max`
    /// equals it and fails with `EINVAL` otherwise (also for the calling domain itself).
    fn xc_domain_max_vcpus(xch: *mut xc_interface, domid: u32, max: c_uint) -> c_int;

    /// `xc_get_nodemap_size(xch)`: `(physinfo.max_node_id + 1 + 7) / 8`, the byte size of
    /// every [`xc_nodemap_t`]; -1 on failure. See [`crate::nodemap_size`].
    fn xc_get_nodemap_size(xch: *mut xc_interface) -> c_int;

    /// `xc_domain_node_getaffinity(xch, domid, nodemap)`: `XEN_DOMCTL_getnodeaffinity`,
    /// the NUMA nodes the domain has affinity with (where Xen allocates its memory).
    ///
    /// **Buffer:** `nodemap` must be non-null and exactly `xc_get_nodemap_size()` bytes:
    /// libxenctrl writes that many. Bit `i` is node `i`. Unless the toolstack set it, Xen
    /// derives the node affinity from the vCPUs' affinity. Errors: `ESRCH` (no such
    /// domain), `EINVAL` (libxenctrl could not size the map).
    fn xc_domain_node_getaffinity(xch: *mut xc_interface, domid: u32, nodemap: xc_nodemap_t) -> c_int;

    /// `xc_cpupool_getinfo(xch, poolid)`: the first cpupool whose id is `>= poolid`
    /// (`XEN_SYSCTL_CPUPOOL_OP_INFO`), in a new allocation owned by the caller, or null
    /// with `errno` set (`ENOENT`: no pool at or after `poolid`).
    ///
    /// **Ownership:** the returned struct and the map its `cpumap` points to
    /// (`xc_get_cpumap_size()` bytes) are one allocation of libxenctrl's: release it once
    /// with `xc_cpupool_infofree` and never free or keep `cpumap` on its own. Every pool is
    /// listed as xl does: from id 0, then from the last id + 1 until `ENOENT`. Prefer
    /// [`crate::cpupool_info`], which does all this.
    fn xc_cpupool_getinfo(xch: *mut xc_interface, poolid: u32) -> *mut xc_cpupoolinfo_t;

    /// `xc_cpupool_infofree(xch, info)`: releases what `xc_cpupool_getinfo` returned
    /// (the struct and its map). `info` must not be used afterwards.
    fn xc_cpupool_infofree(xch: *mut xc_interface, info: *mut xc_cpupoolinfo_t) -> ();

    /// `xc_cpupool_freeinfo(xch)`: the online CPUs that are in no cpupool
    /// (`XEN_SYSCTL_CPUPOOL_OP_FREEINFO`), as a new map of `xc_get_cpumap_size()` bytes,
    /// or null with `errno` set.
    ///
    /// **Ownership:** the map is a plain `calloc` allocation of libxenctrl's
    /// (`xc_cpumap_alloc`), owned by the caller: release it once with libc's `free`
    /// (there is no libxenctrl function for it). Every online CPU is free or in exactly one
    /// pool, so this map and every pool's map (`xc_cpupool_getinfo`) are the online CPUs.
    /// Prefer [`crate::cpupool_freeinfo`], which copies the map and frees it.
    fn xc_cpupool_freeinfo(xch: *mut xc_interface) -> xc_cpumap_t;
}

impl XenCtrl {
    /// Loads the first usable library of `candidates`. Uncached: every call `dlopen`s
    /// again (the loader shares the mapping); use [`xenctrl`] for the process-wide table.
    ///
    /// A candidate is refused, and the next one tried, when it is a relative path, does not
    /// open, is not the libxenctrl of a release in [`INTERFACE_VERSIONS`] (its `DT_SONAME`
    /// decides, checked before any symbol is resolved; for a path, also before `dlopen`), or
    /// lacks a function.
    ///
    /// # Errors
    /// [`LoadError`] listing every candidate with its failure.
    pub fn load(candidates: &[Candidate]) -> Result<XenCtrl, LoadError> {
        let mut attempts = Vec::new();
        for candidate in candidates {
            let name = candidate.name.as_bytes();
            if name.contains(&b'/') && !name.starts_with(b"/") {
                attempts.push(Attempt { candidate: candidate.clone(), failure: AttemptFailure::RelativePath });
                continue;
            }
            // Decided before resolving anything: only a supported release's functions have
            // the prototypes and struct sizes of the table.
            let opened = open_checked(candidate, |soname, file| check_release(soname, file).map(drop));
            let Opened { handle, file, soname } = match opened {
                Ok(opened) => opened,
                Err(failure) => {
                    attempts.push(Attempt { candidate: candidate.clone(), failure });
                    continue;
                }
            };
            let origin = Origin { requested: candidate.clone(), file: file.clone(), soname, skipped: attempts.clone() };
            // SAFETY: `handle` was just returned by dlopen and is never closed; the file's
            // DT_SONAME names a release in INTERFACE_VERSIONS (checked just above), whose
            // exported functions have the prototypes declared in the table.
            match unsafe { XenCtrl::resolve(handle, origin) } {
                Ok(table) => return Ok(table),
                Err((symbol, message)) => {
                    // The handle is deliberately not closed: closing a library can run
                    // its destructors while another copy is loaded; leaking it is harmless.
                    attempts.push(Attempt {
                        candidate: candidate.clone(),
                        failure: AttemptFailure::MissingSymbol { symbol, file, message },
                    });
                }
            }
        }
        Err(LoadError { attempts, target: LoadTarget::XenCtrl })
    }

    /// The name that was passed to `dlopen` and why.
    pub fn requested(&self) -> &Candidate {
        &self.origin.requested
    }

    /// The soname of the library actually loaded (its `DT_SONAME`, e.g.
    /// `libxenctrl.so.4.17`, even when loaded through `libxenctrl.so` or a path); the file
    /// name as requested if the ELF file could not be read.
    pub fn soname(&self) -> &str {
        &self.origin.soname
    }

    /// The file the dynamic loader mapped, as it reports it (not symlink-resolved).
    pub fn file(&self) -> Option<&Path> {
        self.origin.file.as_deref()
    }

    /// The Xen release the library belongs to, parsed from [`soname`](Self::soname)
    /// (`libxenctrl.so.4.17` → 4.17).
    pub fn release(&self) -> Option<XenVersion> {
        release_of_soname(self.soname())
    }

    /// Candidates rejected before this one was loaded.
    pub fn skipped(&self) -> &[Attempt] {
        &self.origin.skipped
    }
}

impl fmt::Debug for XenCtrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XenCtrl")
            .field("soname", &self.origin.soname)
            .field("file", &self.origin.file)
            .field("requested", &self.origin.requested)
            .field("functions", &Self::SYMBOLS.len())
            .finish_non_exhaustive()
    }
}

/// The process-wide libxenctrl table, loaded from [`default_candidates`] on first use.
///
/// The outcome (table or error) is computed once per process and cached: later changes to
/// `$XENVCPU_LIBXENCTRL` or the installed packages are not seen.
///
/// # Errors
/// A clone of the cached [`LoadError`] when no candidate was usable.
pub fn xenctrl() -> Result<&'static XenCtrl, LoadError> {
    static XENCTRL: OnceLock<Result<XenCtrl, LoadError>> = OnceLock::new();
    XENCTRL.get_or_init(|| XenCtrl::load(&default_candidates())).as_ref().map_err(Clone::clone)
}

/// The text of the calling thread's pending `dlerror()`, if any.
fn dlerror_text() -> Option<String> {
    // SAFETY: dlerror has no preconditions. It returns null or a NUL-terminated string that
    // stays valid until the next dl* call on this thread; it is copied before that.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, valid until the next dl* call (see above).
    Some(unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned())
}

/// A library opened and identified: its handle (never closed), the file the loader mapped,
/// and the soname that `check` accepted.
pub(crate) struct Opened {
    pub(crate) handle: NonNull<c_void>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) soname: String,
}

/// Opens `candidate` if `check` accepts its `DT_SONAME`: for an absolute path whose file
/// can be read, before `dlopen` (so that not even the initialisers of the wrong library
/// run), and in any case on the file the loader mapped, before any symbol is resolved.
/// A file whose soname cannot be read is known by its name.
pub(crate) fn open_checked(
    candidate: &Candidate,
    check: impl Fn(&str, Option<PathBuf>) -> Result<(), AttemptFailure>,
) -> Result<Opened, AttemptFailure> {
    let path = Path::new(&candidate.name);
    if path.is_absolute() {
        if let Some(soname) = std::fs::read(path).ok().and_then(|data| crate::elf::soname(&data)) {
            check(&soname, Some(path.to_path_buf()))?;
        }
    }
    let handle = dlopen(&candidate.name).map_err(|message| AttemptFailure::Open { message })?;
    let file = loaded_file(handle);
    let soname = file
        .as_deref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|data| crate::elf::soname(&data))
        .unwrap_or_else(|| file_name_of(&candidate.name));
    // The handle is deliberately not closed when refused: closing a library can run its
    // destructors while another copy is loaded; leaking it is harmless.
    check(&soname, file.clone())?;
    Ok(Opened { handle, file, soname })
}

pub(crate) fn dlopen(name: &OsStr) -> Result<NonNull<c_void>, String> {
    let cname = CString::new(name.as_bytes()).map_err(|_| "name contains a NUL byte")?;
    // SAFETY: `cname` is NUL-terminated and outlives the call. Loading runs the library's
    // initialisers, which is what linking against it would do too.
    let handle = unsafe { libc::dlopen(cname.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    NonNull::new(handle).ok_or_else(|| dlerror_text().unwrap_or_else(|| "dlopen failed".to_owned()))
}

/// Looks up `name` (NUL-terminated) in `handle`; null counts as missing.
///
/// # Safety
/// `handle` is a live handle returned by `dlopen`.
pub(crate) unsafe fn lookup(handle: NonNull<c_void>, name: &str) -> Result<NonNull<c_void>, String> {
    debug_assert!(name.ends_with('\0'));
    // Clear any stale error so that the one read below belongs to this dlsym.
    let _ = dlerror_text();
    // SAFETY: `handle` is live (caller's contract); `name` is NUL-terminated and outlives
    // the call.
    let sym = unsafe { libc::dlsym(handle.as_ptr(), name.as_ptr().cast::<c_char>()) };
    NonNull::new(sym).ok_or_else(|| dlerror_text().unwrap_or_else(|| "symbol resolves to null".to_owned()))
}

/// The path of the file behind `handle`, as the dynamic loader reports it.
#[cfg(target_env = "gnu")]
pub(crate) fn loaded_file(handle: NonNull<c_void>) -> Option<PathBuf> {
    let mut map: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: `handle` came from dlopen and is never closed; RTLD_DI_LINKMAP writes one
    // `struct link_map *` to the out-pointer.
    let rc =
        unsafe { libc::dlinfo(handle.as_ptr(), libc::RTLD_DI_LINKMAP, (&mut map as *mut *mut libc::c_void).cast()) };
    if rc != 0 || map.is_null() {
        return None;
    }
    // glibc's public `struct link_map` starts { ElfW(Addr) l_addr; char *l_name; ... }.
    #[repr(C)]
    struct LinkMapHead {
        l_addr: usize,
        l_name: *const c_char,
    }
    // SAFETY: dlinfo succeeded, so `map` points to the library's link_map, which lives as
    // long as the (never closed) handle and starts with the two fields declared above.
    let name = unsafe { (*map.cast::<LinkMapHead>()).l_name };
    if name.is_null() {
        return None;
    }
    // SAFETY: `l_name` is a NUL-terminated string owned by the loader for the handle's life.
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    (!bytes.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(bytes)))
}

/// Without glibc's `dlinfo` the file is not known (the soname falls back to the name).
#[cfg(not(target_env = "gnu"))]
pub(crate) fn loaded_file(_handle: NonNull<c_void>) -> Option<PathBuf> {
    None
}

/// The release a libxenctrl soname names: `libxenctrl.so.4.17` (or `.so.4.17.0`) → 4.17.
fn release_of_soname(soname: &str) -> Option<XenVersion> {
    let rest = soname.strip_prefix("libxenctrl.so.")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(XenVersion::new(major, minor))
}

/// Accepts a library only if its soname names a release in [`INTERFACE_VERSIONS`].
fn check_release(soname: &str, file: Option<PathBuf>) -> Result<XenVersion, AttemptFailure> {
    let found = release_of_soname(soname);
    match found.filter(|&v| interface_versions(v).is_some()) {
        Some(v) => Ok(v),
        None => Err(AttemptFailure::UnsupportedRelease { soname: soname.to_owned(), found, file }),
    }
}

pub(crate) fn file_name_of(name: &OsStr) -> String {
    Path::new(name).file_name().unwrap_or(name).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[Candidate]) -> Vec<String> {
        list.iter().map(|c| c.name.to_string_lossy().into_owned()).collect()
    }

    const KNOWN: [&str; 6] = [
        "libxenctrl.so.4.22",
        "libxenctrl.so.4.21",
        "libxenctrl.so.4.20",
        "libxenctrl.so.4.19",
        "libxenctrl.so.4.18",
        "libxenctrl.so.4.17",
    ];

    #[test]
    fn without_override_or_hypervisor_known_releases_newest_first_then_unversioned() {
        let list = candidates(None, None);
        let mut expected = KNOWN.to_vec();
        expected.push("libxenctrl.so");
        assert_eq!(names(&list), expected);
        assert_eq!(list[0].origin, CandidateOrigin::KnownRelease(XenVersion::new(4, 22)));
        assert_eq!(list[6].origin, CandidateOrigin::Unversioned);
    }

    #[test]
    fn running_hypervisor_release_goes_first_and_is_not_repeated() {
        let v = XenVersion::new(4, 17);
        let list = candidates(None, Some(v));
        assert_eq!(
            names(&list),
            [
                "libxenctrl.so.4.17",
                "libxenctrl.so.4.22",
                "libxenctrl.so.4.21",
                "libxenctrl.so.4.20",
                "libxenctrl.so.4.19",
                "libxenctrl.so.4.18",
                "libxenctrl.so",
            ]
        );
        assert_eq!(list[0].origin, CandidateOrigin::RunningHypervisor(v));
    }

    #[test]
    fn unsupported_running_release_is_listed_last_only_to_be_refused() {
        let v = XenVersion::new(4, 23);
        let list = candidates(None, Some(v));
        assert_eq!(list.len(), 8);
        assert_eq!(names(&list[..6]), KNOWN);
        assert_eq!(list[6].origin, CandidateOrigin::Unversioned);
        assert_eq!(list[7], Candidate::new("libxenctrl.so.4.23", CandidateOrigin::RunningHypervisor(v)));
    }

    #[test]
    fn release_check_accepts_exactly_the_supported_releases() {
        assert_eq!(check_release("libxenctrl.so.4.17", None), Ok(XenVersion::new(4, 17)));
        assert_eq!(check_release("libxenctrl.so.4.22.0", None), Ok(XenVersion::new(4, 22)));
        for (soname, found) in [
            ("libxenctrl.so.4.16", Some(XenVersion::new(4, 16))),
            ("libxenctrl.so.4.99", Some(XenVersion::new(4, 99))),
            ("libxenctrl.so", None),
            ("libc.so.6", None),
        ] {
            let err = check_release(soname, None).unwrap_err();
            assert_eq!(err, AttemptFailure::UnsupportedRelease { soname: soname.into(), found, file: None });
        }
    }

    #[test]
    fn relative_path_is_refused_without_opening_and_a_bare_name_is_not() {
        let list = [
            Candidate::new("lib/libxenctrl.so.4.17", CandidateOrigin::EnvOverride),
            Candidate::new("./libxenctrl.so.4.17", CandidateOrigin::EnvOverride),
            Candidate::new("libxenvcpu-none.so", CandidateOrigin::EnvOverride),
        ];
        let err = XenCtrl::load(&list).unwrap_err();
        assert_eq!(err.attempts()[0].failure, AttemptFailure::RelativePath);
        assert_eq!(err.attempts()[1].failure, AttemptFailure::RelativePath);
        assert!(matches!(err.attempts()[2].failure, AttemptFailure::Open { .. }));
        assert_eq!(err.kind(), LoadErrorKind::RelativePath);
        assert!(err.to_string().contains("relative paths are refused"), "{err}");
    }

    #[test]
    fn secure_env_var_ignores_the_variable_only_under_at_secure() {
        let name = "XEN_SYS_TEST_SECURE_ENV_VAR";
        std::env::set_var(name, "/tmp/x");
        assert_eq!(secure_env_var_in(name, false), Some(OsString::from("/tmp/x")));
        assert_eq!(secure_env_var_in(name, true), None);
        // This test process is not set-user-ID.
        assert_eq!(secure_env_var(name), Some(OsString::from("/tmp/x")));
        std::env::remove_var(name);
        assert_eq!(secure_env_var_in(name, true), None);
    }

    #[test]
    fn env_override_is_the_only_candidate() {
        let list = candidates(Some(OsStr::new("/opt/xen/lib/libxenctrl.so.4.19")), Some(XenVersion::new(4, 17)));
        assert_eq!(list, [Candidate::new("/opt/xen/lib/libxenctrl.so.4.19", CandidateOrigin::EnvOverride)]);
    }

    #[test]
    fn empty_env_override_counts_as_unset() {
        assert_eq!(candidates(Some(OsStr::new("")), None), candidates(None, None));
    }

    #[test]
    fn hypervisor_version_is_read_from_major_and_minor_files() {
        let dir = std::env::temp_dir().join(format!("xen-sys-sysfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(hypervisor_version_in(&dir), None, "no files");
        std::fs::write(dir.join("major"), "4\n").unwrap();
        assert_eq!(hypervisor_version_in(&dir), None, "minor missing");
        std::fs::write(dir.join("minor"), "17\n").unwrap();
        assert_eq!(hypervisor_version_in(&dir), Some(XenVersion::new(4, 17)));
        std::fs::write(dir.join("minor"), "x").unwrap();
        assert_eq!(hypervisor_version_in(&dir), None, "garbage");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_a_typed_error_naming_the_path() {
        let list = candidates(Some(OsStr::new("/nonexistent/libfoo.so")), None);
        let err = XenCtrl::load(&list).unwrap_err();
        assert_eq!(err.attempts().len(), 1);
        let attempt = &err.attempts()[0];
        assert_eq!(attempt.candidate.name, "/nonexistent/libfoo.so");
        match &attempt.failure {
            AttemptFailure::Open { message } => {
                assert!(message.contains("/nonexistent/libfoo.so"), "{message}")
            }
            other => panic!("expected an open failure, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("/nonexistent/libfoo.so"), "{text}");
        assert!(text.contains(LIBXENCTRL_ENV), "{text}");
    }

    #[test]
    fn library_that_is_not_libxenctrl_is_refused_by_its_soname() {
        // libc is certainly loadable and its soname names no Xen release.
        let list = [Candidate::new("libc.so.6", CandidateOrigin::EnvOverride)];
        let err = XenCtrl::load(&list).unwrap_err();
        match &err.attempts()[0].failure {
            AttemptFailure::UnsupportedRelease { soname, found: None, file } => {
                assert_eq!(soname, "libc.so.6");
                let file = file.as_ref().expect("loader reports the file");
                assert!(file.to_string_lossy().contains("libc.so.6"), "{file:?}");
            }
            other => panic!("expected an unsupported release, got {other:?}"),
        }
        assert_eq!(err.kind(), LoadErrorKind::UnsupportedRelease);
        let text = err.to_string();
        assert!(text.contains("libc.so.6 is not a versioned libxenctrl"), "{text}");
        assert!(text.contains("4.17, 4.18, 4.19, 4.20, 4.21, 4.22"), "{text}");
    }

    #[test]
    fn every_candidate_is_reported_in_order() {
        let list = [
            Candidate::new("libxenvcpu-none-1.so", CandidateOrigin::Unversioned),
            Candidate::new("libxenvcpu-none-2.so", CandidateOrigin::Unversioned),
        ];
        let err = XenCtrl::load(&list).unwrap_err();
        assert_eq!(err.kind(), LoadErrorKind::NotFound);
        assert!(err.unsupported_release().is_none());
        let tried: Vec<_> = err.attempts().iter().map(|a| &a.candidate).collect();
        assert_eq!(tried, [&list[0], &list[1]]);
        let text = err.to_string();
        assert!(text.contains("libxenvcpu-none-1.so") && text.contains("libxenvcpu-none-2.so"));
    }

    #[test]
    fn symbol_table_lists_every_function() {
        assert_eq!(XenCtrl::SYMBOLS.len(), 16);
        assert_eq!(XenCtrl::SYMBOLS[0], "xc_interface_open");
        let stub = XenCtrl::stubbed();
        assert_eq!(stub.release(), None);
        assert!(format!("{stub:?}").contains("functions: 16"));
    }

    #[cfg(has_libxenctrl)]
    #[test]
    fn installed_4_17_resolves_every_symbol() {
        let list = [Candidate::new("libxenctrl.so.4.17", CandidateOrigin::KnownRelease(XenVersion::new(4, 17)))];
        let lib = XenCtrl::load(&list).unwrap();
        assert_eq!(lib.soname(), "libxenctrl.so.4.17");
        assert_eq!(lib.release(), Some(XenVersion::new(4, 17)));
        assert!(lib.skipped().is_empty());
    }
}
