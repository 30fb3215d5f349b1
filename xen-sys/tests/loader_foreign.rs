//! Libraries that must not be used: a fake libxenctrl whose soname says Xen 4.99 is refused
//! with the typed unsupported-release error before any of its functions can run, and one
//! that says 4.17 but lacks a function is a missing symbol. The fakes are built here, with
//! `cc`, into a fresh temporary directory; each of their 11 functions records the call in a
//! counter that the test reads with `dlsym`, then aborts.

use std::ffi::{c_int, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use xen_sys::{AttemptFailure, Candidate, CandidateOrigin, LoadErrorKind, XenCtrl, XenVersion, LIBXENCTRL_ENV};

/// A fresh directory for this test's files.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xen-sys-foreign-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds `dir/<soname>` defining every symbol of `XenCtrl::SYMBOLS` except `omit`: each
/// increments the exported `fake_calls` and aborts.
fn build_fake(dir: &Path, soname: &str, omit: Option<&str>) -> PathBuf {
    let mut c = String::from("#include <stdlib.h>\nint fake_calls = 0;\n");
    for sym in XenCtrl::SYMBOLS.iter().filter(|s| Some(**s) != omit) {
        c.push_str(&format!("void {sym}(void) {{ fake_calls++; abort(); }}\n"));
    }
    let source = dir.join(format!("{soname}.c"));
    std::fs::write(&source, c).unwrap();
    let out = dir.join(soname);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", &format!("-Wl,-soname,{soname}"), "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {soname}");
    out
}

/// The fake's `fake_calls` counter, found through the dynamic loader (which reuses the
/// mapping the loader made, if it made one).
fn calls(path: &Path) -> c_int {
    let name = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: `name` is NUL-terminated; the fake library has no initialisers.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {path:?}");
    // SAFETY: `handle` is live; the name is NUL-terminated.
    let sym = unsafe { libc::dlsym(handle, c"fake_calls".as_ptr()) };
    assert!(!sym.is_null(), "fake_calls missing");
    // SAFETY: `fake_calls` is an `int` defined by the fake library, alive while `handle` is.
    unsafe { *sym.cast::<c_int>() }
}

#[test]
fn library_of_an_unknown_release_is_refused_before_any_call() {
    let dir = temp_dir("499");
    let path = build_fake(&dir, "libxenctrl.so.4.99", None);

    let err = XenCtrl::load(&[Candidate::new(&path, CandidateOrigin::EnvOverride)]).unwrap_err();
    assert_eq!(err.kind(), LoadErrorKind::UnsupportedRelease);
    let attempt = err.unsupported_release().expect("typed accessor");
    match &attempt.failure {
        AttemptFailure::UnsupportedRelease { soname, found, file } => {
            assert_eq!(soname, "libxenctrl.so.4.99");
            assert_eq!(*found, Some(XenVersion::new(4, 99)));
            assert_eq!(file.as_deref(), Some(path.as_path()));
        }
        other => panic!("expected UnsupportedRelease, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(
            "no supported libxenctrl: libxenctrl.so.4.99 is Xen 4.99; xenvcpu supports Xen 4.17, 4.18, 4.19, 4.20, \
             4.21, 4.22"
        ),
        "{text}"
    );
    assert!(text.contains(LIBXENCTRL_ENV), "{text}");
    assert_eq!(calls(&path), 0, "no function of the refused library ran");

    // Through a symlink named like the -dev one: the file's soname decides, not the name.
    let link = dir.join("libxenctrl.so");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let err = XenCtrl::load(&[Candidate::new(&link, CandidateOrigin::Unversioned)]).unwrap_err();
    assert!(
        matches!(&err.attempts()[0].failure, AttemptFailure::UnsupportedRelease { soname, .. } if soname == "libxenctrl.so.4.99"),
        "{err}"
    );
    assert_eq!(calls(&path), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn supported_release_without_every_function_is_a_missing_symbol() {
    let dir = temp_dir("417");
    let path = build_fake(&dir, "libxenctrl.so.4.17", Some("xc_domain_max_vcpus"));
    let err = XenCtrl::load(&[Candidate::new(&path, CandidateOrigin::EnvOverride)]).unwrap_err();
    assert_eq!(err.kind(), LoadErrorKind::MissingSymbol);
    assert!(err.unsupported_release().is_none());
    match &err.attempts()[0].failure {
        AttemptFailure::MissingSymbol { symbol, .. } => assert_eq!(*symbol, "xc_domain_max_vcpus"),
        other => panic!("expected MissingSymbol, got {other:?}"),
    }
    assert_eq!(calls(&path), 0);

    // With every function, the same soname loads (and still nothing is called).
    let dir2 = temp_dir("417-full");
    let full = build_fake(&dir2, "libxenctrl.so.4.17", None);
    let lib = XenCtrl::load(&[Candidate::new(&full, CandidateOrigin::EnvOverride)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lib.release(), Some(XenVersion::new(4, 17)));
    assert_eq!(calls(&full), 0);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}
