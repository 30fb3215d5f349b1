//! CPU features: Xen's featureset with names, a guest's `<cpu>` requests, and migration
//! compatibility between CPU policies.
//!
//! This module is pure: it calls no hypervisor. The featuresets and policies it works on
//! come from the caller (the hypervisor layer reads them from Xen; tests make them up).
//!
//! - [`CpuFeatures`]: a featureset in Xen's layout (`Vec<u32>` words, 14 to 19 of them
//!   depending on the release), with set algebra and Xen's feature names.
//! - [`names`]: the name table (one for Xen 4.17 to 4.22, since names were only ever
//!   appended) and the aliases libxl, xen-cpuid 4.17/4.18 and libvirt use.
//! - [`GuestCpu`]: a domain's `<cpu>` (libvirt's `policy` form or the RFC's
//!   `mode`/`value`), [`GuestCpu::check`] against a host, and the `cpuid=` string libxl
//!   takes.
//! - [`CpuPolicy`] and [`compare`]: whether a domain can move to another host, with a JSON
//!   form to carry a policy between hosts.
//!
//! # Names
//! A feature's name is Xen's: the `XEN_CPUFEATURE` name of `cpufeatureset.h` in lower
//! case with `_` turned into `-` (`sse4-1`, `lahf-lm`, `avx512-vnni`). Parsing also
//! accepts any case, `_` for `-`, and the [`names::ALIASES`] (`sse4.1`, `sse41`, `pni`,
//! `clfsh`...). Note `clflush`: it is Xen's name of the CLFLUSH feature, but in libxl's
//! `cpuid=` it is the key of the CLFLUSH *line size*, so the `cpuid=` strings made here
//! write the feature as `clfsh`.

mod features;
mod guest;
mod json;
pub mod names;
mod policy;

pub use features::{CpuFeatures, FeatureBit, FeatureNameError, MAX_WORDS};
pub use guest::{
    cpuid_name, CheckRule, CpuCheckError, CpuMode, FeaturePolicy, FeatureRequest, GuestCpu, GuestCpuError, Refusal,
    Topology,
};
pub use names::{Feature, XenRelease};
pub use policy::{compare, Blocker, Compatibility, CpuPolicy, LeafLimit, PolicyJsonError, Vendor};
