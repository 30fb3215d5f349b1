//! `$XENVCPU_LIBXENCTRL` naming a file that does not exist: the process-wide loader reports a
//! typed error naming exactly that path, `Interface::open` wraps it, and the outcome is
//! cached. One test only: it sets the environment, which must not race with other threads.

use xen_sys::{xenctrl, AttemptFailure, CandidateOrigin, Interface, OpenError, LIBXENCTRL_ENV};

const MISSING: &str = "/nonexistent/libfoo.so";

#[test]
fn env_override_to_missing_file_is_a_cached_typed_error_naming_it() {
    std::env::set_var(LIBXENCTRL_ENV, MISSING);

    let err = xenctrl().unwrap_err();
    assert_eq!(err.attempts().len(), 1, "an explicit path never falls back: {err}");
    let attempt = &err.attempts()[0];
    assert_eq!(attempt.candidate.name, MISSING);
    assert_eq!(attempt.candidate.origin, CandidateOrigin::EnvOverride);
    assert!(matches!(&attempt.failure, AttemptFailure::Open { message } if message.contains(MISSING)), "{attempt:?}");
    let text = err.to_string();
    assert!(text.contains(MISSING) && text.contains(LIBXENCTRL_ENV), "{text}");

    match Interface::open() {
        Err(OpenError::Library(e)) => assert_eq!(e, err),
        other => panic!("expected OpenError::Library, got {other:?}"),
    }

    // Cached for the life of the process: a later change of the variable is not seen.
    std::env::set_var(LIBXENCTRL_ENV, "libc.so.6");
    assert_eq!(xenctrl().unwrap_err(), err);
}
