//! Xenstore: the `XenStore` trait, a native wire-protocol client and a simulated store.
