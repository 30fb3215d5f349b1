//! The `xenvcpu` command: list, pin, set and inspect the vCPUs of Xen domains from dom0, in
//! the style of `xl` and `virsh`. Everything is in the library's [`xenvcpu::cli`] module.
//!
//! Exit codes: 0 success; 1 the hypervisor or xenstore refused or failed; 2 usage error
//! (bad arguments, unknown domain, bad cpu-list, CPU or vCPU out of range: nothing was
//! changed); 3 no Xen here, no supported libxenctrl, or not privileged; 4 xenstore
//! unreachable or not answering.

fn main() -> std::process::ExitCode {
    xenvcpu::cli::main()
}
