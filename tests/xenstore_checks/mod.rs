//! The xenstore conformance checks ([`conformance::CHECKS`]), one test each,
//! listed once for both places that run them: the simulated store (tests/xenstore_sim.rs) and
//! the real xenstored in the lab (tests/lab_xenstore.rs).

pub mod conformance;

/// One `#[test]` per check, calling `$conform(name)`, plus a test that the list covers
/// `CHECKS` exactly: `xenstore_checks!(conform)` or `xenstore_checks!(conform, ignore = "…")`.
#[macro_export]
macro_rules! xenstore_checks {
    ($conform:path $(, $attr:meta)?) => {
        $crate::xenstore_checks!(@tests $conform, [$($attr)?],
            basic_operations,
            values_are_bytes,
            missing_paths,
            refused_before_sending,
            invalid_names_are_einval,
            payload_limit,
            get_domain_path,
            transaction_isolation,
            conflict_is_eagain,
            blind_write_conflicts,
            directory_listing_conflicts,
            first_access_sees_newer_value,
            unrelated_change_does_not_conflict,
            transact_retries_conflicts,
            transact_gives_up,
            transact_aborts_on_error,
            abort_and_drop_leave_nothing,
            watch_fires,
            unwatch_stops_events,
            special_watch_paths,
            rm_fires_watches,
            transaction_events_at_commit,
            concurrent_requests,
            large_directory,
        );
    };
    (@tests $conform:path, $attrs:tt, $($name:ident),* $(,)?) => {
        $( $crate::xenstore_checks!(@one $conform, $attrs, $name); )*

        #[test]
        fn every_conformance_check_has_a_test() {
            let listed = [$(stringify!($name)),*];
            for check in $crate::xenstore_checks::conformance::CHECKS {
                assert!(listed.contains(&check.name), "no test for {}", check.name);
                assert!(!check.about.is_empty(), "{} says what it checks", check.name);
            }
            assert_eq!(listed.len(), $crate::xenstore_checks::conformance::CHECKS.len());
        }
    };
    (@one $conform:path, [$($attr:meta)?], $name:ident) => {
        #[test]
        $(#[$attr])?
        fn $name() {
            $conform(stringify!($name));
        }
    };
}
