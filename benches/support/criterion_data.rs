//! Reading criterion's results back: its directory and the median of one benchmark.

use std::path::{Path, PathBuf};

/// Where criterion keeps its data: `<target>/criterion`.
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("criterion")
}

/// The median time in ns of one benchmark, if it ran.
pub fn median_ns(dir: &Path, group: &str, function: &str, param: &str) -> Option<f64> {
    let path = dir.join(group).join(function).join(param).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}
