//! libxenguest, for CPU featuresets and CPUID policies ([`XenGuest`], [`xenguest`]), and the
//! calls that encode its pitfalls once ([`cpu_featureset`], [`CpuPolicy`]).
//!
//! `xc_get_cpu_featureset` and the `xc_cpu_policy_*` functions are declared in Xen's
//! `<xenguest.h>` and live in `libxenguest.so.4.<minor>`, not in libxenctrl (Xen 4.17 to
//! 4.22). libxenguest is linked against the libxenctrl of its own release and is handed that
//! library's `xc_interface`: so it is loaded only *for* a loaded libxenctrl, of exactly its
//! release ([`XenGuest::candidates_for`]): first the file next to that libxenctrl, then the
//! soname through the loader's search. The opened file's `DT_SONAME` must be
//! `libxenguest.so.<release>`, checked before any symbol is resolved. It is loaded only
//! when a featureset or policy is asked for: vCPU management works without it.

use std::collections::BTreeMap;
use std::ffi::{c_int, c_uint, OsString};
use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::{Mutex, OnceLock};

use crate::abi::{xc_cpu_policy_t, xc_interface, xen_cpuid_leaf_t, xen_msr_entry_t, XenVersion};
use crate::errno::Errno;
use crate::loader::{
    function_table, open_checked, Attempt, AttemptFailure, Candidate, CandidateOrigin, LoadError, Opened, Origin,
    XenCtrl,
};

function_table! {
    /// The libxenguest functions xenvcpu uses (CPU featuresets and CPUID policies),
    /// resolved from the libxenguest of the loaded libxenctrl's release.
    ///
    /// Get the process-wide table with [`xenguest`]. Each field is the C function of the
    /// same name, with the prototype of `vendor-headers/xenvcpu_xenguest.h` (checked against
    /// Xen's `<xenguest.h>` by `tests/layout.rs`). Every `xch` must come from the
    /// [`XenCtrl`] this table was loaded for ([`xenguest`]'s argument) and still be open.
    /// Unless noted, a function returns -1 on failure and sets `errno`.
    pub struct XenGuest;

    /// `xc_get_cpu_featureset(xch, index, nr_features, featureset)`:
    /// `XEN_SYSCTL_get_cpu_featureset`. `index` is a `XEN_SYSCTL_cpu_featureset_*`.
    ///
    /// **Buffer:** in, `*nr_features` is the number of words at `featureset`; with a null
    /// `featureset` Xen writes the number of words it has and copies nothing (the number
    /// differs between point releases: 14 to 19 in 4.17.x). A shorter buffer gets the
    /// first words and the call fails with `ENOBUFS`. Use [`cpu_featureset`], which sizes
    /// it. Errors: `EINVAL` (unknown index: 4 and 5 exist from 4.17.2), `EOPNOTSUPP` (PV or
    /// HVM compiled out).
    fn xc_get_cpu_featureset(
        xch: *mut xc_interface,
        index: u32,
        nr_features: *mut u32,
        featureset: *mut u32,
    ) -> c_int;

    /// `xc_cpu_policy_init()`: a new empty policy object (`calloc`), null when out of
    /// memory. Free it with `xc_cpu_policy_destroy`; [`CpuPolicy`] does both.
    fn xc_cpu_policy_init() -> *mut xc_cpu_policy_t;

    /// `xc_cpu_policy_destroy(policy)`: frees an object of `xc_cpu_policy_init` (null is
    /// allowed). It must not be used afterwards.
    fn xc_cpu_policy_destroy(policy: *mut xc_cpu_policy_t) -> ();

    /// `xc_cpu_policy_get_system(xch, policy_idx, policy)`: `XEN_SYSCTL_get_cpu_policy`
    /// into `policy`; `policy_idx` is a `XEN_SYSCTL_cpu_policy_*` (in another order than
    /// the featureset indices). Errors: `EINVAL` (index), `EOPNOTSUPP` (PV or HVM compiled
    /// out); libxenguest logs the failure.
    fn xc_cpu_policy_get_system(
        xch: *mut xc_interface,
        policy_idx: c_uint,
        policy: *mut xc_cpu_policy_t,
    ) -> c_int;

    /// `xc_cpu_policy_get_domain(xch, domid, policy)`: `XEN_DOMCTL_get_cpu_policy` of
    /// `domid` into `policy`. Works on running domains. Errors: `ESRCH` (no such domain).
    fn xc_cpu_policy_get_domain(xch: *mut xc_interface, domid: u32, policy: *mut xc_cpu_policy_t) -> c_int;

    /// `xc_cpu_policy_serialise(xch, policy, leaves, nr_leaves, msrs, nr_msrs)`: the
    /// policy as CPUID leaves and MSRs.
    ///
    /// **Buffers:** in, `*nr_leaves` / `*nr_msrs` are the element counts at `leaves` /
    /// `msrs` (either array may be null and is then skipped); out, the counts written.
    /// Too small a capacity: `ENOBUFS`. `xc_cpu_policy_get_size` gives capacities that
    /// always suffice.
    fn xc_cpu_policy_serialise(
        xch: *mut xc_interface,
        policy: *const xc_cpu_policy_t,
        leaves: *mut xen_cpuid_leaf_t,
        nr_leaves: *mut u32,
        msrs: *mut xen_msr_entry_t,
        nr_msrs: *mut u32,
    ) -> c_int;

    /// `xc_cpu_policy_get_size(xch, nr_leaves, nr_msrs)`: the most leaves and MSRs a
    /// serialised policy of this hypervisor can have (120 and 2 in Xen 4.17–4.22).
    fn xc_cpu_policy_get_size(xch: *mut xc_interface, nr_leaves: *mut u32, nr_msrs: *mut u32) -> c_int;
}

/// The soname of a release's libxenguest, `libxenguest.so.<major>.<minor>`.
pub fn libxenguest_soname(release: XenVersion) -> String {
    format!("libxenguest.so.{}.{}", release.major, release.minor)
}

impl XenGuest {
    /// Where to look for the libxenguest that goes with `ctrl`, in order: the file next to
    /// the loaded libxenctrl (when the loader told its path), then the soname
    /// `libxenguest.so.<release>` through the dynamic loader's search. `None` when `ctrl`'s
    /// release is unknown (not a loaded library).
    pub fn candidates_for(ctrl: &XenCtrl) -> Option<Vec<Candidate>> {
        let release = ctrl.release()?;
        let soname = libxenguest_soname(release);
        let mut list = Vec::with_capacity(2);
        if let Some(dir) = ctrl.file().and_then(Path::parent).filter(|d| d.is_absolute()) {
            list.push(Candidate::new(dir.join(&soname), CandidateOrigin::KnownRelease(release)));
        }
        list.push(Candidate::new(soname, CandidateOrigin::KnownRelease(release)));
        Some(list)
    }

    /// Loads the libxenguest of `release` from the first usable candidate. Uncached; use
    /// [`xenguest`]. A candidate is refused when it does not open, when its `DT_SONAME` is
    /// not `libxenguest.so.<release>` (checked before any symbol is resolved; for a path,
    /// also before `dlopen`) or when it lacks a function.
    ///
    /// # Errors
    /// A [`LoadError`] whose [`target`](LoadError::target) is
    /// [`LoadTarget::XenGuest`](crate::LoadTarget::XenGuest), listing every candidate with
    /// its failure; its message says which package installs the library.
    pub fn load(candidates: &[Candidate], release: XenVersion, libxenctrl: &str) -> Result<XenGuest, LoadError> {
        let expected = libxenguest_soname(release);
        let mut attempts = Vec::new();
        for candidate in candidates {
            let path = Path::new(&candidate.name);
            if path.is_absolute() && !path.exists() {
                let message = format!("{}: no such file", path.display());
                attempts.push(Attempt { candidate: candidate.clone(), failure: AttemptFailure::Open { message } });
                continue;
            }
            let same = |soname: &str, file: Option<std::path::PathBuf>| {
                if soname == expected {
                    return Ok(());
                }
                Err(AttemptFailure::WrongLibrary { soname: soname.to_owned(), expected: expected.clone(), file })
            };
            let Opened { handle, file, soname } = match open_checked(candidate, same) {
                Ok(opened) => opened,
                Err(failure) => {
                    attempts.push(Attempt { candidate: candidate.clone(), failure });
                    continue;
                }
            };
            let origin = Origin { requested: candidate.clone(), file: file.clone(), soname, skipped: attempts.clone() };
            // SAFETY: `handle` was just returned by dlopen and is never closed; its
            // DT_SONAME is libxenguest.so.<release> of a release whose libxenctrl was
            // accepted (INTERFACE_VERSIONS), and every libxenguest of those releases
            // exports these functions with the declared prototypes (tests/layout.rs).
            match unsafe { XenGuest::resolve(handle, origin) } {
                Ok(table) => return Ok(table),
                Err((symbol, message)) => {
                    // Not closed, as for libxenctrl: leaking a handle is harmless.
                    attempts.push(Attempt {
                        candidate: candidate.clone(),
                        failure: AttemptFailure::MissingSymbol { symbol, file, message },
                    });
                }
            }
        }
        Err(LoadError::xenguest(attempts, release, libxenctrl))
    }

    /// The soname of the library loaded (`libxenguest.so.4.17`).
    pub fn soname(&self) -> &str {
        &self.origin.soname
    }

    /// The file the dynamic loader mapped, as it reports it.
    pub fn file(&self) -> Option<&Path> {
        self.origin.file.as_deref()
    }

    /// The name that was passed to `dlopen` and why.
    pub fn requested(&self) -> &Candidate {
        &self.origin.requested
    }
}

impl fmt::Debug for XenGuest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XenGuest")
            .field("soname", &self.origin.soname)
            .field("file", &self.origin.file)
            .field("functions", &Self::SYMBOLS.len())
            .finish_non_exhaustive()
    }
}

/// The process-wide libxenguest for `ctrl` (of `ctrl`'s release), loaded on first use
/// ([`XenGuest::candidates_for`], [`XenGuest::load`]). The outcome, table or error, is
/// cached per release.
///
/// # Errors
/// A [`LoadError`] naming every file tried and the package that installs the library; also
/// when `ctrl`'s release is unknown.
pub fn xenguest(ctrl: &XenCtrl) -> Result<&'static XenGuest, LoadError> {
    type Cache = Mutex<BTreeMap<XenVersion, Result<&'static XenGuest, LoadError>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let Some(release) = ctrl.release() else {
        let attempt = Attempt {
            candidate: Candidate::new(OsString::from(ctrl.soname()), CandidateOrigin::Unversioned),
            failure: AttemptFailure::WrongLibrary {
                soname: ctrl.soname().to_owned(),
                expected: "libxenctrl.so.<major>.<minor>".into(),
                file: ctrl.file().map(Path::to_path_buf),
            },
        };
        return Err(LoadError::xenguest(vec![attempt], XenVersion::new(0, 0), ctrl.soname()));
    };
    let mut cache = CACHE.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(release)
        .or_insert_with(|| {
            let candidates = XenGuest::candidates_for(ctrl).unwrap_or_default();
            XenGuest::load(&candidates, release, ctrl.soname()).map(|t| &*Box::leak(Box::new(t)))
        })
        .clone()
}

/// One of the hypervisor's featuresets (`xc_get_cpu_featureset`), sized as the hypervisor
/// says: first asked with a null buffer for the number of words (it differs between
/// point releases), then read into exactly that many.
///
/// # Errors
/// The errno of the failed call: `EINVAL` for an index the hypervisor lacks (4 and 5
/// before 4.17.2), `EOPNOTSUPP` when PV or HVM is compiled out.
///
/// # Safety
/// `xch` is an open handle of the libxenctrl `lib` was loaded for ([`xenguest`]), not
/// closed during the call.
pub unsafe fn cpu_featureset(lib: &XenGuest, xch: *mut xc_interface, index: u32) -> Result<Vec<u32>, Errno> {
    let mut nr: u32 = 0;
    // SAFETY: `xch` is open (caller's contract); a null featureset only asks for the count,
    // written to `nr`.
    if unsafe { (lib.xc_get_cpu_featureset)(xch, index, &mut nr, ptr::null_mut()) } < 0 {
        return Err(Errno::last());
    }
    let mut words = vec![0u32; nr as usize];
    let mut got = nr;
    // SAFETY: `xch` is open; `words` has `got` writable u32s, and Xen writes at most `got`.
    if unsafe { (lib.xc_get_cpu_featureset)(xch, index, &mut got, words.as_mut_ptr()) } < 0 {
        return Err(Errno::last());
    }
    words.truncate(got.min(nr) as usize);
    Ok(words)
}

/// A libxenguest CPU policy object (`xc_cpu_policy_t`), destroyed on drop.
pub struct CpuPolicy<'a> {
    lib: &'a XenGuest,
    policy: NonNull<xc_cpu_policy_t>,
}

impl<'a> CpuPolicy<'a> {
    /// `xc_cpu_policy_init()`.
    ///
    /// # Errors
    /// `ENOMEM` when libxenguest could not allocate it.
    pub fn new(lib: &'a XenGuest) -> Result<Self, Errno> {
        // SAFETY: xc_cpu_policy_init takes nothing and returns a new heap object or null.
        let raw = unsafe { (lib.xc_cpu_policy_init)() };
        NonNull::new(raw).map(|policy| Self { lib, policy }).ok_or(Errno::new(libc::ENOMEM))
    }

    /// `xc_cpu_policy_get_system(xch, index, policy)`: reads a system policy
    /// (`XEN_SYSCTL_cpu_policy_*`) into this object.
    ///
    /// # Errors
    /// The errno of the failed call.
    ///
    /// # Safety
    /// `xch` is an open handle of the libxenctrl this object's library was loaded for.
    pub unsafe fn get_system(&mut self, xch: *mut xc_interface, index: u32) -> Result<(), Errno> {
        // SAFETY: `xch` is open (caller's contract); `policy` is a live object of this
        // library, which the call overwrites.
        if unsafe { (self.lib.xc_cpu_policy_get_system)(xch, index, self.policy.as_ptr()) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    /// `xc_cpu_policy_get_domain(xch, domid, policy)`: reads a domain's policy into this
    /// object.
    ///
    /// # Errors
    /// The errno of the failed call (`ESRCH`: no such domain).
    ///
    /// # Safety
    /// As [`get_system`](Self::get_system).
    pub unsafe fn get_domain(&mut self, xch: *mut xc_interface, domid: u32) -> Result<(), Errno> {
        // SAFETY: as in get_system.
        if unsafe { (self.lib.xc_cpu_policy_get_domain)(xch, domid, self.policy.as_ptr()) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    /// The object's CPUID leaves and MSRs (`xc_cpu_policy_serialise`), in buffers sized by
    /// `xc_cpu_policy_get_size`.
    ///
    /// # Errors
    /// The errno of either call.
    ///
    /// # Safety
    /// As [`get_system`](Self::get_system).
    pub unsafe fn serialise(
        &self,
        xch: *mut xc_interface,
    ) -> Result<(Vec<xen_cpuid_leaf_t>, Vec<xen_msr_entry_t>), Errno> {
        let (mut nr_leaves, mut nr_msrs) = (0u32, 0u32);
        // SAFETY: `xch` is open; the call writes two u32s.
        if unsafe { (self.lib.xc_cpu_policy_get_size)(xch, &mut nr_leaves, &mut nr_msrs) } < 0 {
            return Err(Errno::last());
        }
        let mut leaves = vec![xen_cpuid_leaf_t::default(); nr_leaves as usize];
        let mut msrs = vec![xen_msr_entry_t::default(); nr_msrs as usize];
        // SAFETY: `xch` is open; `policy` is live; `leaves` and `msrs` have exactly
        // `nr_leaves` and `nr_msrs` writable elements, the capacities passed in, and
        // libxenguest writes at most that many, returning the counts written.
        let ret = unsafe {
            (self.lib.xc_cpu_policy_serialise)(
                xch,
                self.policy.as_ptr(),
                leaves.as_mut_ptr(),
                &mut nr_leaves,
                msrs.as_mut_ptr(),
                &mut nr_msrs,
            )
        };
        if ret < 0 {
            return Err(Errno::last());
        }
        leaves.truncate(nr_leaves as usize);
        msrs.truncate(nr_msrs as usize);
        Ok((leaves, msrs))
    }
}

impl Drop for CpuPolicy<'_> {
    fn drop(&mut self) {
        // SAFETY: `policy` came from this library's xc_cpu_policy_init and is destroyed
        // exactly once, here; no borrow of it outlives `self`.
        unsafe { (self.lib.xc_cpu_policy_destroy)(self.policy.as_ptr()) };
    }
}

impl fmt::Debug for CpuPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuPolicy").field("policy", &self.policy).field("lib", &self.lib.soname()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadTarget;

    fn set_errno(raw: c_int) {
        // SAFETY: __errno_location returns the calling thread's errno slot.
        unsafe { *libc::__errno_location() = raw };
    }

    /// A hypervisor with 3 featureset words: index 1 is [1, 2, 3]; index 4 is EINVAL.
    unsafe extern "C" fn fake_featureset(_xch: *mut xc_interface, index: u32, nr: *mut u32, fs: *mut u32) -> c_int {
        if index == 4 {
            set_errno(libc::EINVAL);
            return -1;
        }
        // SAFETY: cpu_featureset passes a valid `nr`, and `fs` null or with `*nr` words.
        unsafe {
            if fs.is_null() {
                *nr = 3;
                return 0;
            }
            let n = (*nr).min(3);
            for i in 0..n {
                *fs.add(i as usize) = i + 1;
            }
            if *nr < 3 {
                set_errno(libc::ENOBUFS);
                return -1;
            }
            *nr = 3;
        }
        0
    }

    #[test]
    fn featureset_is_sized_by_the_hypervisor_first() {
        let lib = XenGuest { xc_get_cpu_featureset: fake_featureset, ..XenGuest::stubbed() };
        // SAFETY: the fake ignores the handle.
        assert_eq!(unsafe { cpu_featureset(&lib, ptr::null_mut(), 1) }, Ok(vec![1, 2, 3]));
        // SAFETY: as above.
        assert_eq!(unsafe { cpu_featureset(&lib, ptr::null_mut(), 4) }, Err(Errno::new(libc::EINVAL)));
    }

    #[test]
    fn candidates_are_the_sibling_file_then_the_soname() {
        let v = XenVersion::new(4, 17);
        assert_eq!(libxenguest_soname(v), "libxenguest.so.4.17");
        let mut ctrl = XenCtrl::stubbed();
        assert_eq!(XenGuest::candidates_for(&ctrl), None, "a stub has no release");
        ctrl.origin.soname = "libxenctrl.so.4.17".into();
        ctrl.origin.file = Some("/usr/lib/x86_64-linux-gnu/libxenctrl.so.4.17".into());
        let names: Vec<_> = XenGuest::candidates_for(&ctrl).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["/usr/lib/x86_64-linux-gnu/libxenguest.so.4.17", "libxenguest.so.4.17"]);
    }

    #[test]
    fn a_missing_libxenguest_names_the_files_and_the_package() {
        let v = XenVersion::new(4, 19);
        let list = [
            Candidate::new("/nonexistent/libxenguest.so.4.19", CandidateOrigin::KnownRelease(v)),
            Candidate::new("libxenvcpu-none-guest.so", CandidateOrigin::KnownRelease(v)),
        ];
        let err = XenGuest::load(&list, v, "libxenctrl.so.4.19").unwrap_err();
        assert_eq!(err.attempts().len(), 2);
        assert_eq!(err.target(), &LoadTarget::XenGuest { release: v, libxenctrl: "libxenctrl.so.4.19".into() });
        let text = err.to_string();
        for needle in
            ["/nonexistent/libxenguest.so.4.19", "libxenvcpu-none-guest.so", "libxenmisc4.19", "libxenctrl.so.4.19"]
        {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }

    #[test]
    fn a_library_of_another_name_is_refused_by_its_soname() {
        let v = XenVersion::new(4, 17);
        let err = XenGuest::load(&[Candidate::new("libc.so.6", CandidateOrigin::KnownRelease(v))], v, "x").unwrap_err();
        match &err.attempts()[0].failure {
            AttemptFailure::WrongLibrary { soname, expected, .. } => {
                assert_eq!((soname.as_str(), expected.as_str()), ("libc.so.6", "libxenguest.so.4.17"));
            }
            other => panic!("expected WrongLibrary, got {other:?}"),
        }
        assert_eq!(err.kind(), crate::LoadErrorKind::UnsupportedRelease);
    }

    #[test]
    fn symbol_table_lists_every_function() {
        assert_eq!(XenGuest::SYMBOLS.len(), 7);
        assert_eq!(XenGuest::SYMBOLS[0], "xc_get_cpu_featureset");
    }

    #[cfg(has_libxenctrl)]
    #[test]
    fn installed_4_17_libxenguest_resolves_every_symbol() {
        let v = XenVersion::new(4, 17);
        let list = [Candidate::new("libxenguest.so.4.17", CandidateOrigin::KnownRelease(v))];
        let lib = XenGuest::load(&list, v, "libxenctrl.so.4.17").unwrap();
        assert_eq!(lib.soname(), "libxenguest.so.4.17");
    }
}
