//! Reading criterion's results back: its directory and the median of one benchmark, only
//! if this process wrote it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// When this process started measuring ([`mark_start`]).
static START: OnceLock<SystemTime> = OnceLock::new();

/// Notes the start of this run: [`median_ns`] ignores results written before it. Call it
/// first thing in `main`.
pub fn mark_start() {
    START.get_or_init(SystemTime::now);
}

/// Where criterion keeps its data: `<target>/criterion`.
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("criterion")
}

/// The median time in ns of one benchmark, if it ran in this process: criterion's
/// `new/estimates.json` of a benchmark this run did not measure (a filtered run) is an
/// earlier run's, and is ignored. (A second of slack covers the file system's coarse
/// clock; two runs are never that close.)
pub fn median_ns(dir: &Path, group: &str, function: &str, param: &str) -> Option<f64> {
    let path = dir.join(group).join(function).join(param).join("new/estimates.json");
    let start = *START.get().expect("criterion_data::mark_start not called");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written + Duration::from_secs(1) < start {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}
