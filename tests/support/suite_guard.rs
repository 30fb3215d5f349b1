//! The guard every suite macro shares: the tests a suite file defines, to compare with the
//! list its macro instantiates.

/// Every `pub fn NAME(f: &Fixture)` of a suite's source, sorted.
pub fn defined_tests(source: &'static str) -> Vec<&'static str> {
    let mut names: Vec<&str> =
        source.lines().filter_map(|line| line.strip_prefix("pub fn ")?.strip_suffix("(f: &Fixture) {")).collect();
    names.sort_unstable();
    names
}
