//! The C API from C and from Python: tests/capi/capi_test.c compiled with the system `cc`
//! against the library installed by capi/install.sh (found through its xenvcpu.pc), run
//! on the simulated lab; the same program linked statically; and tests/capi/ctypes_check.py
//! loading libxenvcpu.so.0 with ctypes. These fail when `cc`, `pkg-config` or `python3`
//! is missing: they are what shows that the library works for C and Python.
//!
//! The lab test (`#[ignore]`d here) runs the program lab.sh built and carried into dom0,
//! against real Xen.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("capi/ is in the repository").to_path_buf()
}

/// Builds the library (with this test's profile, in this test's target directory) and
/// installs it under a fresh prefix: `PREFIX/{lib,include,lib/pkgconfig}`.
fn installed() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's path");
        // <target>/<profile>/deps/<this test>
        let profile_dir = exe.parent().and_then(Path::parent).expect("the test runs from <target>/<profile>/deps");
        let target = profile_dir.parent().expect("the target directory");
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("a profile directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "xenvcpu-capi", "--lib"]).env("CARGO_TARGET_DIR", target).current_dir(repo());
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        check(&run(&mut build), "cargo build -p xenvcpu-capi");
        // In the target directory, made anew by each run of this test binary.
        let prefix = target.join(format!("capi-test-{profile}"));
        let _ = std::fs::remove_dir_all(&prefix);
        let mut install = Command::new("bash");
        install.arg(repo().join("capi/install.sh")).arg(&prefix).arg(profile_dir);
        check(&run(&mut install), "capi/install.sh");
        prefix
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"))
}

fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", out.status);
    stdout
}

/// `pkg-config ARGS xenvcpu` against the installed xenvcpu.pc, split into arguments.
fn pkg_config(args: &[&str]) -> Vec<String> {
    let pc_dir = installed().join("lib/pkgconfig");
    let out = run(Command::new("pkg-config").args(args).arg("xenvcpu").env("PKG_CONFIG_PATH", pc_dir));
    check(&out, "pkg-config").split_whitespace().map(str::to_owned).collect()
}

/// Compiles tests/capi/capi_test.c into `out` with `cc`, warnings as errors, with the
/// extra arguments (the libraries).
fn compile(out: &Path, libs: &[String]) {
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(out)
        .args(pkg_config(&["--cflags"]))
        .arg(repo().join("tests/capi/capi_test.c"))
        .args(libs)
        .arg("-pthread");
    check(&run(&mut cc), "cc tests/capi/capi_test.c");
}

/// Runs the C program on `uri` and checks its report: every check passed.
fn run_program(mut cmd: Command, uri: &str) -> String {
    let out = run(cmd.arg(uri));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        out.status.success() && last.starts_with("capi: ") && last.ends_with(" passed, 0 failed"),
        "the C program failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let passed: u32 = last["capi: ".len()..].split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(passed >= 100, "the program made all its checks: {last}");
    stdout
}

#[test]
fn the_header_compiles_as_c_and_the_shared_library_passes_the_c_program_on_the_simulated_lab() {
    let dir = installed();
    let exe = dir.join("capi_test");
    compile(&exe, &pkg_config(&["--libs"]));
    // Only libxenvcpu.so.0 where the loader looks: the program asks for the soname.
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::copy(dir.join("lib/libxenvcpu.so.0"), runtime.join("libxenvcpu.so.0")).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.env("LD_LIBRARY_PATH", &runtime);
    let out = run_program(cmd, "sim:///lab");
    for section in ["threads: thread 3", "get_vcpus: the map is truncated at 256 CPUs", "set_vcpus: an HVM guest"] {
        assert!(out.contains(&format!("ok - {section}")), "the program checked {section:?}");
    }
}

#[test]
fn the_static_library_links_with_pkg_config_static_and_passes_the_c_program() {
    let dir = installed();
    let exe = dir.join("capi_test_static");
    let mut libs = vec![dir.join("lib/libxenvcpu.a").display().to_string()];
    // Libs.private, without the -lxenvcpu that would pick the shared library.
    libs.extend(pkg_config(&["--static", "--libs"]).into_iter().filter(|a| a != "-lxenvcpu" && !a.starts_with("-L")));
    compile(&exe, &libs);
    let mut cmd = Command::new(&exe);
    cmd.env_remove("LD_LIBRARY_PATH");
    run_program(cmd, "sim:///lab");
}

#[test]
fn the_pkg_config_file_names_the_version_and_the_installed_paths() {
    let dir = installed();
    assert_eq!(pkg_config(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    assert_eq!(pkg_config(&["--cflags"]), [format!("-I{}", dir.join("include").display())]);
    assert_eq!(pkg_config(&["--libs"]), [format!("-L{}", dir.join("lib").display()), "-lxenvcpu".into()]);
    let real = std::fs::read_link(dir.join("lib/libxenvcpu.so.0")).unwrap();
    assert_eq!(real, Path::new(&format!("libxenvcpu.so.{}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn the_readme_c_example_compiles_and_runs_on_the_simulated_lab() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme.split("## The C library").nth(1).expect("README has the C library section");
    let source = section.split("```c\n").nth(1).and_then(|s| s.split("```").next()).expect("a C example");
    let dir = installed();
    std::fs::write(dir.join("vcpus.c"), source).unwrap();
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(dir.join("vcpus"))
        .arg(dir.join("vcpus.c"))
        .args(pkg_config(&["--cflags", "--libs"]));
    check(&run(&mut cc), "cc README's vcpus.c");
    let mut vcpus = Command::new(dir.join("vcpus"));
    vcpus.args(["labguest", "sim:///lab"]).env("LD_LIBRARY_PATH", dir.join("lib"));
    let out = check(&run(&mut vcpus), "README's vcpus labguest sim:///lab");
    println!("{out}");
    assert!(out.contains("vCPU 0: state 1, CPU 0, CPUs 0-7 of its hard affinity 0x0f"), "{out}");
    assert!(out.contains("vCPU 3: state 0, CPU -1, CPUs 0-7 of its hard affinity 0x0f"), "{out}");
    assert!(out.ends_with("online vCPUs 0-7: 0x03\n"), "{out}");
}

#[test]
fn python_ctypes_uses_the_library_without_a_c_compiler() {
    let lib = installed().join("lib/libxenvcpu.so.0");
    let out = run(Command::new("python3").arg(repo().join("tests/capi/ctypes_check.py")).arg(&lib));
    let stdout = check(&out, "python3 tests/capi/ctypes_check.py");
    println!("{stdout}");
    assert!(stdout.lines().last() == Some("ctypes: ok"), "{stdout}");
}

/// In the lab: the C program lab.sh compiled and carried into dom0 (next to `xenvcpu`,
/// with libxenvcpu.so.0 in dom0's library cache), against real Xen and labguest.
#[test]
#[ignore = "lab: needs Xen (tests/lab/lab.sh test)"]
fn lab_the_c_program_passes_against_real_xen() {
    assert_eq!(std::env::var("XENVCPU_LAB").as_deref(), Ok("1"), "only in the lab");
    let bin = std::env::var_os("XENVCPU_BIN").map(PathBuf::from).expect("XENVCPU_BIN");
    let exe = bin.parent().expect("the lab's bin directory").join("xenvcpu-capi-test");
    run_program(Command::new(exe), "-");
}
