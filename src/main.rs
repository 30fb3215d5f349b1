//! The `xenvcpu` command.

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") | Some("-V") => println!("xenvcpu {}", env!("CARGO_PKG_VERSION")),
        _ => {
            println!("xenvcpu {}: manage the vCPUs of Xen domains from dom0", env!("CARGO_PKG_VERSION"));
            println!("usage: xenvcpu --version | --help");
        }
    }
}
