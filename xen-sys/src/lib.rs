//! Raw Xen ABI mirrors and the run-time loader for libxenctrl.
//!
//! Filled in by the xen-sys issue; this crate knows bytes and calling conventions only.
