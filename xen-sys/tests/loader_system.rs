//! The real libxenctrl of Debian's `libxenmisc4.17`, loaded through the default candidate
//! list: every symbol resolves, and opening the interface on a host without Xen gives the
//! typed "no hypervisor" error instead of a crash (on a Xen dom0 it opens, or reports a
//! permission error when not root).
//!
//! One test only: it clears `$XENVCPU_LIBXENCTRL`, which must not race with other threads.

use xen_sys::{
    candidates, privcmd_present, xenctrl, Candidate, CandidateOrigin, Errno, Interface, OpenError, XenCtrl, XenVersion,
    INTERFACE_VERSIONS, LIBXENCTRL_ENV,
};

#[test]
#[cfg_attr(not(has_libxenctrl), ignore = "libxenmisc4.17 is not installed: apt-get install libxenmisc4.17")]
fn installed_libxenctrl_resolves_and_open_fails_typed_without_xen() {
    std::env::remove_var(LIBXENCTRL_ENV);

    // The 4.17 library by name: every symbol of the table resolves.
    let explicit =
        XenCtrl::load(&[Candidate::new("libxenctrl.so.4.17", CandidateOrigin::KnownRelease(XenVersion::new(4, 17)))])
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(explicit.soname(), "libxenctrl.so.4.17");
    assert_eq!(explicit.release(), Some(XenVersion::new(4, 17)));
    let file = explicit.file().expect("the loader reports the file");
    assert!(file.to_string_lossy().contains("libxenctrl.so.4.17"), "{file:?}");

    // Through the unversioned -dev symlink, the soname is still the real one.
    let unversioned = XenCtrl::load(&candidates(None, None)[6..]).unwrap();
    assert_eq!(unversioned.requested().origin, CandidateOrigin::Unversioned);
    assert_eq!(unversioned.soname(), "libxenctrl.so.4.17");

    // The process-wide table, from the default list: some known release, newer ones that
    // are not installed recorded as skipped.
    let lib = xenctrl().unwrap_or_else(|e| panic!("{e}"));
    let release = lib.release().expect("versioned soname");
    assert!(INTERFACE_VERSIONS.iter().any(|iv| iv.release == release), "{release}");
    for skipped in lib.skipped() {
        assert!(skipped.candidate.name != lib.requested().name);
    }

    match Interface::open() {
        Err(OpenError::NoHypervisor { errno, privcmd_present: false, .. }) => {
            assert!(!privcmd_present());
            assert_eq!(errno, Errno::new(libc::ENOENT));
        }
        // On a real Xen host this test still holds the library to its contract.
        Ok(xc) if privcmd_present() => assert!(!xc.as_ptr().is_null()),
        Err(OpenError::Permission { .. }) if privcmd_present() => {}
        other => panic!("unexpected result (privcmd present: {}): {other:?}", privcmd_present()),
    }
}
