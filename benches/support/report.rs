//! Turns this run's measurements into the ratio table and the SVG plot.
//!
//! Ours / memcpy comes from the pairs recorded in this process (`paired.rs`); memcpy's,
//! the naive loop's and the shift loop's medians from criterion's
//! `<target>/criterion/<group>/<function>/<param>/new/estimates.json`, only where this
//! process wrote it (`criterion_data.rs`: a filtered run leaves the others' files from an
//! earlier run, which show as `–`). It prints a Markdown table of ratios to memcpy and
//! writes it with the plot to `<target>/criterion/cpumap-report.{md,svg}`.

use std::fmt::Write as _;
use std::path::Path;

use std::hint::black_box;

use super::criterion_data::{criterion_dir, median_ns};
use super::paired;
use super::pairing;

const OPS: [&str; 4] = ["zero_extend", "truncate", "bytes_to_words", "words_to_bytes"];

fn ratio_range(dir: &Path, group: &str, prefix: &str, patterns: &[&str], param: &str, base: f64) -> String {
    let ratios: Vec<f64> = patterns
        .iter()
        .filter_map(|p| median_ns(dir, group, &format!("{prefix}_{p}"), param))
        .map(|t| t / base)
        .collect();
    show_range(&ratios)
}

/// The paired ratios of ours to memcpy (`support/paired.rs`) over the patterns, and the
/// range of the number of pairs of blocks each rests on.
fn paired_range(patterns: &[&str], label: impl Fn(&str) -> String) -> (String, String) {
    let stats: Vec<pairing::Paired> = patterns.iter().filter_map(|p| paired::stats(&label(p))).collect();
    let ratios: Vec<f64> = stats.iter().map(|s| s.ratio).collect();
    let pairs = stats.iter().map(|s| s.pairs);
    let pairs = match pairs.clone().min().zip(pairs.max()) {
        None => "–".into(),
        Some((lo, hi)) if lo == hi => format!("{lo}"),
        Some((lo, hi)) => format!("{lo}–{hi}"),
    };
    (show_range(&ratios), pairs)
}

/// The harness's own time per call with `block` calls per block: the paired loop around
/// closures that do nothing but hand their buffer to `black_box`, median over 2000 pairs.
fn harness_ns(block: u64) -> f64 {
    let mut buf = [0u8; 64];
    let mut nothing = |b: &mut [u8; 64], _: usize| {
        black_box(b);
    };
    let mut nothing_too = |b: &mut [u8; 64], _: usize| {
        black_box(b);
    };
    let mut pairs = Vec::new();
    pairing::run_blocks(2000 * block, block, &mut buf, &mut nothing, &mut nothing_too, &mut pairs);
    pairing::stats(&pairs, block).map_or(f64::NAN, |s| s.own_ns)
}

fn show_range(ratios: &[f64]) -> String {
    match ratios.iter().copied().reduce(f64::min).zip(ratios.iter().copied().reduce(f64::max)) {
        None => "–".into(),
        Some((lo, hi)) if hi - lo < 0.05 * lo => format!("{lo:.2}×"),
        Some((lo, hi)) => format!("{lo:.2}–{hi:.2}×"),
    }
}

/// Prints the ratio table of this run and writes it with the plot next to criterion's data.
/// `block` is the paired measurement's block size, for the harness's own cost.
pub fn write(sizes: &[usize], patterns: &[&str], block: u64) {
    let dir = criterion_dir();
    let mut md = String::new();
    md.push_str("| translation | CPUs | memcpy | ours / memcpy | pairs | naive / memcpy | shift loop / memcpy |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for op in OPS {
        for n in sizes {
            let param = n.to_string();
            let Some(base) = median_ns(&dir, op, "memcpy", &param) else { continue };
            let (ours, pairs) = paired_range(patterns, |p| format!("{op}/{p}/{n}"));
            let _ = writeln!(
                md,
                "| {op} | {n} | {base:.1} ns | {ours} | {pairs} | {} | {} |",
                ratio_range(&dir, op, "naive", patterns, &param, base),
                ratio_range(&dir, op, "shift", patterns, &param, base),
            );
        }
    }
    if let Some(base) = median_ns(&dir, "array_256x256", "memcpy", "both") {
        let rows = [
            ("libvirt→Xen", "libvirt_to_xen"),
            ("Xen→libvirt", "xen_to_libvirt"),
            ("Xen→libvirt, 252-CPU host (masked)", "xen_to_libvirt_masked"),
        ];
        for (dir_name, param) in rows {
            let (ours, pairs) = paired_range(patterns, |p| format!("array/{p}/{param}"));
            let _ = writeln!(
                md,
                "| array 256×256 {dir_name} (bulk) | 256 | {base:.1} ns | {ours} | {pairs} | {} | per map: {} |",
                ratio_range(&dir, "array_256x256", "naive", patterns, param, base),
                ratio_range(&dir, "array_256x256", "per_map", patterns, param, base),
            );
        }
    }
    let (one, many) = (harness_ns(1), harness_ns(block));
    let array = median_ns(&dir, "array_256x256", "memcpy", "both");
    let _ = writeln!(
        md,
        "\nHarness per call (empty closures): {one:.2} ns with blocks of 1, {many:.2} ns with blocks of {block}{}",
        array.map_or(String::new(), |a| format!(" ({:.1}% of the array's memcpy, {a:.1} ns)", 100.0 * many / a)),
    );
    println!("\nRatios to memcpy of the destination's bytes in this run (range over random/ones/sparse);");
    println!("ours: median over the pairs of blocks of {block} calls of criterion's samples (pairs: per pattern);");
    println!("naive and shift loop: their median over memcpy's:\n");
    println!("{md}");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("cpumap-report.md"), &md);
    let svg = plot(&dir, sizes);
    match std::fs::write(dir.join("cpumap-report.svg"), svg) {
        Ok(()) => println!("plot: {}", dir.join("cpumap-report.svg").display()),
        Err(e) => println!("plot not written: {e}"),
    }
}

/// Four log-log panels (one per translation) of time against map size, random maps.
fn plot(dir: &Path, sizes: &[usize]) -> String {
    const SERIES: [(&str, &str, &str); 4] = [
        ("memcpy", "memcpy (limit)", "#444444"),
        ("ours_random", "xenvcpu", "#1f77b4"),
        ("shift_random", "old libvirt shift loop", "#ff7f0e"),
        ("naive_random", "naive per-bit loop", "#d62728"),
    ];
    let (pw, ph, margin) = (330.0, 230.0, 55.0);
    let (width, height) = (2.0 * (pw + margin) + 20.0, 2.0 * (ph + margin) + 60.0);
    let (xmin, xmax) = ((*sizes.first().unwrap_or(&8) as f64).log2(), (*sizes.last().unwrap_or(&8192) as f64).log2());
    let (ymin, ymax) = (0.0_f64, 5.0_f64); // 1 ns .. 100 µs
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' font-size='11'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='18' text-anchor='middle' font-size='14'>cpumap translation: time per map (median) vs map size</text>\n",
        width / 2.0
    );
    for (i, op) in OPS.iter().enumerate() {
        let (ox, oy) = (margin + (i % 2) as f64 * (pw + margin), 35.0 + (i / 2) as f64 * (ph + margin));
        let x = |n: f64| ox + (n.log2() - xmin) / (xmax - xmin) * pw;
        let y = |ns: f64| oy + ph - (ns.max(1.0).log10() - ymin) / (ymax - ymin) * ph;
        let _ = writeln!(svg, "<rect x='{ox}' y='{oy}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>");
        let _ = writeln!(
            svg,
            "<text x='{}' y='{}' text-anchor='middle' font-weight='bold'>{op}</text>",
            ox + pw / 2.0,
            oy - 5.0
        );
        for (e, label) in ["1 ns", "10 ns", "100 ns", "1 µs", "10 µs", "100 µs"].iter().enumerate() {
            let yy = y(10f64.powi(e as i32));
            let _ = writeln!(svg, "<line x1='{ox}' x2='{}' y1='{yy}' y2='{yy}' stroke='#eee'/>", ox + pw);
            let _ = writeln!(svg, "<text x='{}' y='{}' text-anchor='end'>{label}</text>", ox - 4.0, yy + 4.0);
        }
        for &n in sizes {
            let xx = x(n as f64);
            let _ = writeln!(svg, "<text x='{xx}' y='{}' text-anchor='middle'>{n}</text>", oy + ph + 14.0);
        }
        let _ = writeln!(
            svg,
            "<text x='{}' y='{}' text-anchor='middle'>CPUs in the map</text>",
            ox + pw / 2.0,
            oy + ph + 28.0
        );
        for (function, _, color) in SERIES {
            let points: Vec<String> = sizes
                .iter()
                .filter_map(|&n| {
                    median_ns(dir, op, function, &n.to_string()).map(|t| format!("{:.1},{:.1}", x(n as f64), y(t)))
                })
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill='none' stroke='{color}' stroke-width='2' points='{}'/>",
                points.join(" ")
            );
        }
    }
    for (k, (_, label, color)) in SERIES.iter().enumerate() {
        let lx = margin + k as f64 * 180.0;
        let ly = height - 15.0;
        let _ =
            writeln!(svg, "<line x1='{lx}' x2='{}' y1='{ly}' y2='{ly}' stroke='{color}' stroke-width='3'/>", lx + 20.0);
        let _ = writeln!(svg, "<text x='{}' y='{}'>{label}</text>", lx + 25.0, ly + 4.0);
    }
    svg.push_str("</svg>\n");
    svg
}
