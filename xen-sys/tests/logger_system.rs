//! libxenctrl's messages go to xen-sys's logger, never to stderr. The real Debian
//! libxenctrl 4.17 is opened in a child process of this test binary (so that its stderr can
//! be captured): without Xen, `xc_interface_open` fails and libxencall complains; the
//! complaint must reach the hook and the error's log, and stderr must stay empty. A second
//! child opens with libxenctrl's default (null) logger and shows that the same complaint
//! *is* printed there, i.e. that the check can fail.

use std::process::{Command, Output};
use std::ptr;

use xen_sys::{privcmd_present, set_log_hook, Candidate, CandidateOrigin, Interface, XenCtrl, XenVersion};

const CHILD: &str = "XEN_SYS_LOGGER_TEST_CHILD";
const TEST: &str = "libxenctrl_messages_reach_the_hook_and_the_error_never_stderr";
const COMPLAINT: &str = "xencall: Could not obtain handle on privileged command interface";

fn load_4_17() -> &'static XenCtrl {
    let lib =
        XenCtrl::load(&[Candidate::new("libxenctrl.so.4.17", CandidateOrigin::KnownRelease(XenVersion::new(4, 17)))])
            .unwrap_or_else(|e| panic!("{e}"));
    Box::leak(Box::new(lib))
}

/// The scenarios, run in the child; they report on stdout.
fn child(mode: &str) {
    let lib = load_4_17();
    match mode {
        "ours" => {
            set_log_hook(Some(Box::new(|level, message| println!("HOOK {level}: {message}"))));
            match Interface::open_with(lib) {
                Ok(_) => println!("OPENED"),
                Err(e) => {
                    println!("ERROR {e}");
                    for m in e.log() {
                        println!("LOG {}: {}", m.level, m.text);
                    }
                }
            }
            // A panicking hook is contained: the open still returns normally. Silence the
            // panic message, which would otherwise go to stderr.
            std::panic::set_hook(Box::new(|_| {}));
            set_log_hook(Some(Box::new(|_, _| panic!("hook panics"))));
            let again = Interface::open_with(lib);
            println!("SURVIVED {}", again.is_ok());
        }
        "null" => {
            // SAFETY: null loggers are allowed (libxenctrl then logs to stderr); flags 0. A
            // handle, if one opens, is closed right away.
            let xch = unsafe { (lib.xc_interface_open)(ptr::null_mut(), ptr::null_mut(), 0) };
            if !xch.is_null() {
                // SAFETY: `xch` was just opened by this table and is closed once.
                unsafe { (lib.xc_interface_close)(xch) };
            }
            println!("NULL-DONE");
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn run_child(mode: &str) -> Output {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .output()
        .expect("run the test binary as a child");
    assert!(out.status.success(), "child {mode} failed: {out:?}");
    out
}

#[test]
#[cfg_attr(not(has_libxenctrl), ignore = "libxenmisc4.17 is not installed: apt-get install libxenmisc4.17")]
fn libxenctrl_messages_reach_the_hook_and_the_error_never_stderr() {
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode);
    }
    let ours = run_child("ours");
    let stdout = String::from_utf8_lossy(&ours.stdout);
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(stderr.is_empty(), "nothing may reach stderr, got: {stderr:?}");
    assert!(stdout.contains("SURVIVED"), "{stdout}");
    if privcmd_present() && stdout.contains("OPENED") {
        // A Xen host where we may open the interface: nothing to complain about.
        return;
    }
    assert!(stdout.contains(&format!("HOOK error: {COMPLAINT}")), "the hook got the message: {stdout}");
    assert!(stdout.contains(&format!("LOG error: {COMPLAINT}")), "the error kept the message: {stdout}");
    assert!(stdout.contains(&format!("libxenctrl said: {COMPLAINT}")), "the error shows it: {stdout}");
    if !privcmd_present() {
        assert!(stdout.contains(&format!("{COMPLAINT}: No such file or directory")), "{stdout}");
    }

    // Control: libxenctrl's own logger prints exactly this to stderr.
    let null = run_child("null");
    assert!(String::from_utf8_lossy(&null.stdout).contains("NULL-DONE"));
    let stderr = String::from_utf8_lossy(&null.stderr);
    assert!(stderr.contains("xencall: error: Could not obtain handle"), "{stderr:?}");
}
