//! CPUID policies as Xen serialises them, and their decoding into featureset words.
//!
//! Pure: no hypercall here. Xen hands a CPU policy (the hardware's, its own, the guest
//! defaults and maxima, or a domain's) to the toolstack as a list of CPUID leaves
//! ([`CpuidLeaf`]) and two MSRs ([`MsrEntry`]: `0xce` PLATFORM_INFO and `0x10a`
//! ARCH_CAPABILITIES); this module reads the vendor, the leaf limits and the *featureset*
//! out of them.
//!
//! A featureset is Xen's array of 32-bit feature words (`xc_get_cpu_featureset`); word
//! `w` bit `b` is the feature Xen numbers `w * 32 + b` (`cpufeatureset.h`). Each word is
//! one register of one leaf ([`FEATURESET_SOURCES`], Xen's `x86_cpu_policy_to_featureset`,
//! identical in Xen 4.17 to 4.22); a leaf the policy does not have gives 0. The number of
//! words differs between Xen releases, even point releases (14 to 19): decode to the
//! hypervisor's own length so that the words line up with its featuresets.

use std::fmt;

/// The `subleaf` of a leaf that has no subleaves (`XEN_CPUID_NO_SUBLEAF`).
pub const NO_SUBLEAF: u32 = 0xffff_ffff;

/// `MSR_INTEL_PLATFORM_INFO`: bit 31 says whether CPUID faulting is available.
pub const MSR_PLATFORM_INFO: u32 = 0xce;
/// `MSR_ARCH_CAPABILITIES`: featureset words 16 (bits 31:0) and 17 (bits 63:32).
pub const MSR_ARCH_CAPABILITIES: u32 = 0x10a;

/// Basic leaf 0: the largest basic leaf and the vendor string.
pub const LEAF_VENDOR: u32 = 0;
/// Extended leaf `0x80000000`: the largest extended leaf.
pub const LEAF_EXTENDED_MAX: u32 = 0x8000_0000;

/// One CPUID leaf of a policy: the input (`leaf`, `subleaf`) and the four output
/// registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuidLeaf {
    /// `eax` input.
    pub leaf: u32,
    /// `ecx` input, [`NO_SUBLEAF`] for a leaf without subleaves.
    pub subleaf: u32,
    /// `eax` output.
    pub eax: u32,
    /// `ebx` output.
    pub ebx: u32,
    /// `ecx` output.
    pub ecx: u32,
    /// `edx` output.
    pub edx: u32,
}

impl CpuidLeaf {
    /// The output register `reg`.
    pub fn reg(&self, reg: Reg) -> u32 {
        match reg {
            Reg::Eax => self.eax,
            Reg::Ebx => self.ebx,
            Reg::Ecx => self.ecx,
            Reg::Edx => self.edx,
        }
    }

    fn reg_mut(&mut self, reg: Reg) -> &mut u32 {
        match reg {
            Reg::Eax => &mut self.eax,
            Reg::Ebx => &mut self.ebx,
            Reg::Ecx => &mut self.ecx,
            Reg::Edx => &mut self.edx,
        }
    }
}

/// One MSR of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsrEntry {
    /// The MSR's index.
    pub index: u32,
    /// Its value.
    pub value: u64,
}

/// A CPU policy as Xen serialises it: leaves in Xen's order, then MSRs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawCpuPolicy {
    /// The CPUID leaves.
    pub leaves: Vec<CpuidLeaf>,
    /// The MSRs.
    pub msrs: Vec<MsrEntry>,
}

impl RawCpuPolicy {
    /// The leaf `leaf` with subleaf `subleaf` ([`NO_SUBLEAF`] for a leaf without), if the
    /// policy has it.
    pub fn leaf(&self, leaf: u32, subleaf: u32) -> Option<&CpuidLeaf> {
        self.leaves.iter().find(|l| l.leaf == leaf && l.subleaf == subleaf)
    }

    /// The MSR `index`, if the policy has it.
    pub fn msr(&self, index: u32) -> Option<u64> {
        self.msrs.iter().find(|m| m.index == index).map(|m| m.value)
    }

    /// The leaf without subleaves, or else subleaf 0 (Xen serialises leaf 0 and the
    /// extended range without subleaves, leaves 4, 7, 0xb and 0xd with them).
    fn leaf_any(&self, leaf: u32) -> Option<&CpuidLeaf> {
        self.leaf(leaf, NO_SUBLEAF).or_else(|| self.leaf(leaf, 0))
    }
}

/// A CPUID output register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reg {
    /// `eax`.
    Eax,
    /// `ebx`.
    Ebx,
    /// `ecx`.
    Ecx,
    /// `edx`.
    Edx,
}

/// Where one featureset word comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WordSource {
    /// A register of a CPUID leaf; `subleaf` is `None` for a leaf without subleaves.
    Cpuid {
        /// The leaf.
        leaf: u32,
        /// The subleaf, if the leaf has subleaves.
        subleaf: Option<u32>,
        /// The register.
        reg: Reg,
    },
    /// Half of an MSR: bits 31:0 (`high == false`) or 63:32.
    Msr {
        /// The MSR.
        index: u32,
        /// The upper half.
        high: bool,
    },
}

const fn cpuid(leaf: u32, subleaf: Option<u32>, reg: Reg) -> WordSource {
    WordSource::Cpuid { leaf, subleaf, reg }
}

/// The source of every featureset word Xen 4.17–4.22 know, by word (Xen's
/// `FEATURESET_*` names in the comments). Word 18 exists from 4.17.6 / 4.18.6 / 4.19.3 /
/// 4.20.1 on; older hypervisors have fewer words.
pub const FEATURESET_SOURCES: [WordSource; 19] = [
    cpuid(0x1, None, Reg::Edx),                                    // 0: 1d
    cpuid(0x1, None, Reg::Ecx),                                    // 1: 1c
    cpuid(0x8000_0001, None, Reg::Edx),                            // 2: e1d
    cpuid(0x8000_0001, None, Reg::Ecx),                            // 3: e1c
    cpuid(0xd, Some(1), Reg::Eax),                                 // 4: Da1
    cpuid(0x7, Some(0), Reg::Ebx),                                 // 5: 7b0
    cpuid(0x7, Some(0), Reg::Ecx),                                 // 6: 7c0
    cpuid(0x8000_0007, None, Reg::Edx),                            // 7: e7d
    cpuid(0x8000_0008, None, Reg::Ebx),                            // 8: e8b
    cpuid(0x7, Some(0), Reg::Edx),                                 // 9: 7d0
    cpuid(0x7, Some(1), Reg::Eax),                                 // 10: 7a1
    cpuid(0x8000_0021, None, Reg::Eax),                            // 11: e21a
    cpuid(0x7, Some(1), Reg::Ebx),                                 // 12: 7b1
    cpuid(0x7, Some(2), Reg::Edx),                                 // 13: 7d2
    cpuid(0x7, Some(1), Reg::Ecx),                                 // 14: 7c1
    cpuid(0x7, Some(1), Reg::Edx),                                 // 15: 7d1
    WordSource::Msr { index: MSR_ARCH_CAPABILITIES, high: false }, // 16: m10Al
    WordSource::Msr { index: MSR_ARCH_CAPABILITIES, high: true },  // 17: m10Ah
    cpuid(0x8000_0021, None, Reg::Ecx),                            // 18: e21c
];

/// The number of featureset words this module can decode ([`FEATURESET_SOURCES`]).
pub const FEATURESET_WORDS: usize = FEATURESET_SOURCES.len();

/// The featureset of `policy`, `nr_words` words long (pass the hypervisor's featureset
/// length). Words past [`FEATURESET_WORDS`], and words whose leaf or MSR the policy
/// lacks, are 0.
pub fn decode_featureset(policy: &RawCpuPolicy, nr_words: usize) -> Vec<u32> {
    // A leaf beyond the policy's own limits reads as 0, as Xen treats it.
    let max_basic = policy.leaf_any(LEAF_VENDOR).map_or(0, |l| l.eax);
    let max_ext = policy.leaf_any(LEAF_EXTENDED_MAX).map_or(0, |l| l.eax);
    let max_sub7 = if max_basic >= 7 { policy.leaf(0x7, 0).map_or(0, |l| l.eax) } else { 0 };
    let in_range = |leaf: u32, subleaf: Option<u32>| {
        if leaf >= LEAF_EXTENDED_MAX {
            leaf <= max_ext
        } else {
            leaf <= max_basic && (leaf != 7 || subleaf.unwrap_or(0) <= max_sub7)
        }
    };
    (0..nr_words)
        .map(|w| match FEATURESET_SOURCES.get(w) {
            Some(&WordSource::Cpuid { leaf, subleaf, reg }) if in_range(leaf, subleaf) => {
                policy.leaf(leaf, subleaf.unwrap_or(NO_SUBLEAF)).map_or(0, |l| l.reg(reg))
            }
            Some(WordSource::Cpuid { .. }) => 0,
            Some(&WordSource::Msr { index, high }) => {
                policy.msr(index).map_or(0, |v| if high { (v >> 32) as u32 } else { v as u32 })
            }
            None => 0,
        })
        .collect()
}

/// The CPU vendor, from leaf 0's vendor string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuVendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD`.
    Amd,
    /// `HygonGenuine`.
    Hygon,
    /// Any other vendor string (its 12 bytes).
    Other([u8; 12]),
}

impl CpuVendor {
    /// The vendor of a leaf-0 answer: the string is `ebx`, `edx`, `ecx`, little-endian.
    pub fn from_leaf0(ebx: u32, ecx: u32, edx: u32) -> Self {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&ebx.to_le_bytes());
        bytes[4..8].copy_from_slice(&edx.to_le_bytes());
        bytes[8..].copy_from_slice(&ecx.to_le_bytes());
        match &bytes {
            b"GenuineIntel" => Self::Intel,
            b"AuthenticAMD" => Self::Amd,
            b"HygonGenuine" => Self::Hygon,
            _ => Self::Other(bytes),
        }
    }

    /// The 12-byte vendor string.
    pub fn bytes(&self) -> [u8; 12] {
        match self {
            Self::Intel => *b"GenuineIntel",
            Self::Amd => *b"AuthenticAMD",
            Self::Hygon => *b"HygonGenuine",
            Self::Other(b) => *b,
        }
    }

    /// Leaf 0's `(ebx, ecx, edx)` for this vendor.
    pub fn leaf0_registers(&self) -> (u32, u32, u32) {
        let b = self.bytes();
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        (word(0), word(8), word(4))
    }
}

impl fmt::Display for CpuVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.bytes()))
    }
}

/// A decoded CPU policy: what xenvcpu needs to compare policies and to describe a CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XenCpuPolicy {
    /// The vendor (leaf 0). A policy without leaf 0 gives `Other` of 12 zero bytes.
    pub vendor: CpuVendor,
    /// The largest basic leaf (leaf 0 `eax`).
    pub max_basic_leaf: u32,
    /// The largest extended leaf (leaf `0x80000000` `eax`; 0 if absent).
    pub max_extended_leaf: u32,
    /// The largest subleaf of leaf 7 (leaf 7:0 `eax`; 0 if absent). Xen's own
    /// compatibility check compares it with the basic and extended limits.
    pub max_leaf7_subleaf: u32,
    /// MSR_PLATFORM_INFO (`0xce`), if the policy has it; bit 31 is CPUID faulting.
    pub platform_info: Option<u64>,
    /// The featureset words ([`decode_featureset`]).
    pub featureset: Vec<u32>,
    /// The policy as Xen serialised it.
    pub raw: RawCpuPolicy,
}

/// A domain's CPU policy (the same type as a host's).
pub type DomainCpuPolicy = XenCpuPolicy;

impl XenCpuPolicy {
    /// Decodes `raw`, with a featureset of `nr_words` words.
    pub fn decode(raw: RawCpuPolicy, nr_words: usize) -> Self {
        let leaf0 = raw.leaf_any(LEAF_VENDOR).copied().unwrap_or_default();
        let featureset = decode_featureset(&raw, nr_words);
        Self {
            vendor: CpuVendor::from_leaf0(leaf0.ebx, leaf0.ecx, leaf0.edx),
            max_basic_leaf: leaf0.eax,
            max_extended_leaf: raw.leaf_any(LEAF_EXTENDED_MAX).map_or(0, |l| l.eax),
            max_leaf7_subleaf: raw.leaf(0x7, 0).map_or(0, |l| l.eax),
            platform_info: raw.msr(MSR_PLATFORM_INFO),
            featureset,
            raw,
        }
    }

    /// The policy as [`crate::cpu::CpuPolicy`]: what `xenvcpu cpu export` writes and
    /// [`crate::cpu::compare`] compares. On AMD, word 2 repeats leaf 1 `edx`'s common
    /// features in a domain's policy but not in the default and max featuresets, so the
    /// repeats are left out ([`without_e1d_aliases`]) to compare like with like.
    pub fn to_portable(&self) -> crate::cpu::CpuPolicy {
        let (ebx, ecx, edx) = self.vendor.leaf0_registers();
        crate::cpu::CpuPolicy {
            vendor: crate::cpu::Vendor::from_registers(ebx, edx, ecx),
            max_leaf: self.max_basic_leaf,
            max_subleaf_7: self.max_leaf7_subleaf,
            max_ext_leaf: self.max_extended_leaf,
            platform_info: self.platform_info.unwrap_or(0),
            features: crate::cpu::CpuFeatures::from_words(without_e1d_aliases(&self.featureset)),
        }
    }

    /// Family, model and stepping from leaf 1 `eax`, with the extended family and model
    /// folded in as the CPU vendors document it; `None` without leaf 1.
    pub fn family_model_stepping(&self) -> Option<(u32, u32, u32)> {
        let eax = self.raw.leaf_any(0x1)?.eax;
        let base_family = (eax >> 8) & 0xf;
        let family = if base_family == 0xf { base_family + ((eax >> 20) & 0xff) } else { base_family };
        let base_model = (eax >> 4) & 0xf;
        let model =
            if base_family == 0x6 || base_family == 0xf { base_model | ((eax >> 12) & 0xf0) } else { base_model };
        Some((family, model, eax & 0xf))
    }

    /// The brand string (leaves `0x80000002`–`0x80000004`), trimmed; `None` when the
    /// policy lacks them or they are empty.
    pub fn brand(&self) -> Option<String> {
        let mut bytes = Vec::with_capacity(48);
        for leaf in 0x8000_0002..=0x8000_0004 {
            let l = self.raw.leaf_any(leaf)?;
            for r in [l.eax, l.ebx, l.ecx, l.edx] {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = String::from_utf8_lossy(&bytes[..end]).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

/// What [`encode_policy`] builds a policy from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyShape {
    /// The vendor.
    pub vendor: CpuVendor,
    /// Leaf 1 `eax` (family, model, stepping).
    pub signature: u32,
    /// The largest basic leaf.
    pub max_basic_leaf: u32,
    /// The largest extended leaf.
    pub max_extended_leaf: u32,
    /// The largest subleaf of leaf 7.
    pub max_leaf7_subleaf: u32,
    /// MSR_PLATFORM_INFO.
    pub platform_info: u64,
}

/// A serialised policy with the given shape and featureset, in Xen's leaf order: the
/// inverse of [`decode_featureset`] for every word whose leaf the limits include (a word
/// whose leaf is beyond them is dropped, as Xen clears out-of-range leaves). For the
/// simulator and for tests; only the leaves that carry the limits and featureset words are
/// made.
pub fn encode_policy(shape: &PolicyShape, featureset: &[u32]) -> RawCpuPolicy {
    let mut leaves: Vec<CpuidLeaf> = Vec::new();
    let in_range = |leaf: u32| {
        if leaf >= LEAF_EXTENDED_MAX {
            leaf <= shape.max_extended_leaf
        } else {
            leaf <= shape.max_basic_leaf
        }
    };
    let mut push = |leaf: u32, subleaf: u32| {
        if in_range(leaf) && !leaves.iter().any(|l| l.leaf == leaf && l.subleaf == subleaf) {
            leaves.push(CpuidLeaf { leaf, subleaf, ..CpuidLeaf::default() });
        }
    };
    push(LEAF_VENDOR, NO_SUBLEAF);
    push(0x1, NO_SUBLEAF);
    for sub in 0..=shape.max_leaf7_subleaf.min(2) {
        push(0x7, sub);
    }
    push(0xd, 0);
    push(0xd, 1);
    push(LEAF_EXTENDED_MAX, NO_SUBLEAF);
    for leaf in [0x8000_0001, 0x8000_0007, 0x8000_0008, 0x8000_0021] {
        push(leaf, NO_SUBLEAF);
    }
    leaves.sort_by_key(|l| (l.leaf, l.subleaf.wrapping_add(1)));
    let (ebx, ecx, edx) = shape.vendor.leaf0_registers();
    let mut arch_caps: Option<u64> = None;
    for l in &mut leaves {
        match (l.leaf, l.subleaf) {
            (LEAF_VENDOR, _) => (l.eax, l.ebx, l.ecx, l.edx) = (shape.max_basic_leaf, ebx, ecx, edx),
            (0x1, _) => l.eax = shape.signature,
            (0x7, 0) => l.eax = shape.max_leaf7_subleaf,
            (LEAF_EXTENDED_MAX, _) => l.eax = shape.max_extended_leaf,
            _ => {}
        }
    }
    for (w, &word) in featureset.iter().enumerate().take(FEATURESET_WORDS) {
        match FEATURESET_SOURCES[w] {
            WordSource::Cpuid { leaf, subleaf, reg } => {
                let subleaf = subleaf.unwrap_or(NO_SUBLEAF);
                if let Some(l) = leaves.iter_mut().find(|l| l.leaf == leaf && l.subleaf == subleaf) {
                    *l.reg_mut(reg) = word;
                }
            }
            WordSource::Msr { high, .. } => {
                let v = arch_caps.get_or_insert(0);
                *v |= if high { u64::from(word) << 32 } else { u64::from(word) };
            }
        }
    }
    let mut msrs = vec![MsrEntry { index: MSR_PLATFORM_INFO, value: shape.platform_info }];
    msrs.push(MsrEntry { index: MSR_ARCH_CAPABILITIES, value: arch_caps.unwrap_or(0) });
    RawCpuPolicy { leaves, msrs }
}

/// The features of leaf 1 `edx` (word 0) that AMD CPUs repeat in leaf `0x80000001` `edx`
/// (word 2): FPU, VME, DE, PSE, TSC, MSR, PAE, MCE, CX8, APIC, MTRR, PGE, MCA, CMOV, PAT,
/// PSE36, MMX, FXSR (Xen's `CPUID_COMMON_1D_FEATURES`).
///
/// Xen keeps them in word 0 only for its guest defaults and maxima (and in
/// `physinfo.hw_cap`), but an AMD or Hygon policy read from hardware (raw, host) or given to
/// a domain repeats them in word 2: in the lab (Xen 4.17 on QEMU's AMD `qemu64`) dom0's
/// word 2 was `pv_max`'s plus exactly these bits of its word 0. Compare featuresets with
/// [`without_e1d_aliases`].
pub const COMMON_1D_FEATURES: u32 = 0x0183_f3ff;

/// `words` with the word-2 repeats of word 0's features ([`COMMON_1D_FEATURES`]) cleared:
/// the form in which featuresets of different origin (hardware, guest maximum, domain)
/// can be compared bit by bit.
pub fn without_e1d_aliases(words: &[u32]) -> Vec<u32> {
    let mut out = words.to_vec();
    if let Some(e1d) = out.get_mut(2) {
        *e1d &= !COMMON_1D_FEATURES;
    }
    out
}

/// `words` with word 0's [`COMMON_1D_FEATURES`] repeated in word 2, as an AMD or Hygon
/// domain's policy has them (for the simulator).
pub fn with_e1d_aliases(words: &[u32]) -> Vec<u32> {
    let mut out = words.to_vec();
    if out.len() > 2 {
        out[2] = (out[2] & !COMMON_1D_FEATURES) | (out[0] & COMMON_1D_FEATURES);
    }
    out
}

/// Whether every bit of `inner` is also in `outer` (missing words of `outer` count as 0).
pub fn featureset_is_subset(inner: &[u32], outer: &[u32]) -> bool {
    inner.iter().enumerate().all(|(w, &bits)| bits & !outer.get(w).copied().unwrap_or(0) == 0)
}

/// The bits of `inner` not in `outer`, as `(word, bit)` pairs in order.
pub fn featureset_excess(inner: &[u32], outer: &[u32]) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    for (w, &bits) in inner.iter().enumerate() {
        let extra = bits & !outer.get(w).copied().unwrap_or(0);
        out.extend((0..32).filter(|b| extra & (1 << b) != 0).map(|b| (w, b)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(leaf: u32, subleaf: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidLeaf {
        CpuidLeaf { leaf, subleaf, eax, ebx, ecx, edx }
    }

    /// A hand-made Intel policy: every word has a distinct pattern.
    fn sample() -> RawCpuPolicy {
        let (vb, vc, vd) = (u32::from_le_bytes(*b"Genu"), u32::from_le_bytes(*b"ntel"), u32::from_le_bytes(*b"ineI"));
        RawCpuPolicy {
            leaves: vec![
                leaf(0, NO_SUBLEAF, 0xd, vb, vc, vd),
                leaf(1, NO_SUBLEAF, 0x0006_06a1, 0, 0x1111_0001, 0x0000_0010),
                leaf(4, 0, 0xaaaa, 0, 0, 0),
                leaf(7, 0, 2, 0x5555_0005, 0x6666_0006, 0x9999_0009),
                leaf(7, 1, 0xa0a0_000a, 0xb0b0_000c, 0xe0e0_000e, 0xf0f0_000f),
                leaf(7, 2, 0, 0, 0, 0xd0d0_000d),
                leaf(0xd, 0, 0x7, 0, 0, 0),
                leaf(0xd, 1, 0x4444_0004, 0, 0, 0),
                leaf(0x4000_0000, NO_SUBLEAF, 0x4000_0005, 0, 0, 0),
                leaf(0x8000_0000, NO_SUBLEAF, 0x8000_0021, 0, 0, 0),
                leaf(0x8000_0001, NO_SUBLEAF, 0, 0, 0x3333_0003, 0x2222_0002),
                leaf(0x8000_0007, NO_SUBLEAF, 0, 0, 0, 0x7777_0007),
                leaf(0x8000_0008, NO_SUBLEAF, 0x3028, 0x8888_0008, 0, 0),
                leaf(0x8000_0021, NO_SUBLEAF, 0xbbbb_000b, 0, 0x1818_0012, 0),
            ],
            msrs: vec![
                MsrEntry { index: MSR_PLATFORM_INFO, value: 1 << 31 },
                MsrEntry { index: MSR_ARCH_CAPABILITIES, value: 0x1717_0011_1616_0010 },
            ],
        }
    }

    const SAMPLE_WORDS: [u32; 19] = [
        0x0000_0010,
        0x1111_0001,
        0x2222_0002,
        0x3333_0003,
        0x4444_0004,
        0x5555_0005,
        0x6666_0006,
        0x7777_0007,
        0x8888_0008,
        0x9999_0009,
        0xa0a0_000a,
        0xbbbb_000b,
        0xb0b0_000c,
        0xd0d0_000d,
        0xe0e0_000e,
        0xf0f0_000f,
        0x1616_0010,
        0x1717_0011,
        0x1818_0012,
    ];

    #[test]
    fn every_word_comes_from_its_register() {
        assert_eq!(decode_featureset(&sample(), 19), SAMPLE_WORDS);
    }

    #[test]
    fn the_length_follows_the_hypervisor() {
        // 4.17.0 has 14 words, 4.17.2-4.17.5 18: shorter and longer both line up.
        assert_eq!(decode_featureset(&sample(), 14), SAMPLE_WORDS[..14]);
        let long = decode_featureset(&sample(), 21);
        assert_eq!(long[..19], SAMPLE_WORDS);
        assert_eq!(long[19..], [0, 0]);
    }

    #[test]
    fn absent_leaves_and_msrs_give_zero_words() {
        let mut p = sample();
        p.leaves.retain(|l| !(l.leaf == 7 && l.subleaf == 1) && l.leaf != 0x8000_0021);
        p.msrs.clear();
        let fs = decode_featureset(&p, 19);
        for w in [10, 11, 12, 14, 15, 16, 17, 18] {
            assert_eq!(fs[w], 0, "word {w}");
        }
        assert_eq!(fs[13], 0xd0d0_000d, "7:2 is still there");
    }

    #[test]
    fn a_leaf_with_subleaves_is_not_read_as_one_without() {
        // Leaf 7 without a subleaf is not 7:0: Xen always serialises 7 with subleaves.
        let p = RawCpuPolicy { leaves: vec![leaf(7, NO_SUBLEAF, 0, 0x55, 0, 0)], msrs: vec![] };
        assert_eq!(decode_featureset(&p, 6)[5], 0);
    }

    #[test]
    fn vendor_limits_and_msrs_are_decoded() {
        let p = XenCpuPolicy::decode(sample(), 18);
        assert_eq!(p.vendor, CpuVendor::Intel);
        assert_eq!(p.vendor.to_string(), "GenuineIntel");
        assert_eq!((p.max_basic_leaf, p.max_extended_leaf, p.max_leaf7_subleaf), (0xd, 0x8000_0021, 2));
        assert_eq!(p.platform_info, Some(1 << 31));
        assert_eq!(p.featureset.len(), 18);
        assert_eq!(p.family_model_stepping(), Some((6, 0x6a, 1)));
        assert_eq!(p.brand(), None);
    }

    #[test]
    fn vendors_round_trip_through_leaf_0() {
        for (v, s) in [
            (CpuVendor::Intel, b"GenuineIntel"),
            (CpuVendor::Amd, b"AuthenticAMD"),
            (CpuVendor::Hygon, b"HygonGenuine"),
        ] {
            let (ebx, ecx, edx) = v.leaf0_registers();
            assert_eq!(CpuVendor::from_leaf0(ebx, ecx, edx), v);
            assert_eq!(&v.bytes(), s);
        }
        let (ebx, ecx, edx) = CpuVendor::Other(*b"VIA VIA VIA ").leaf0_registers();
        assert_eq!(CpuVendor::from_leaf0(ebx, ecx, edx).to_string(), "VIA VIA VIA ");
        assert_eq!(CpuVendor::from_leaf0(0, 0, 0), CpuVendor::Other([0; 12]));
    }

    #[test]
    fn amd_family_folds_the_extended_family() {
        // An AMD Zen 3 signature: family 0xf + 0xa = 0x19, model 0x21, stepping 0.
        let mut raw = sample();
        raw.leaves[1].eax = 0x00a2_0f10;
        assert_eq!(XenCpuPolicy::decode(raw, 1).family_model_stepping(), Some((0x19, 0x21, 0)));
    }

    #[test]
    fn brand_string_is_read_from_three_leaves() {
        let text = *b"QEMU Virtual CPU version 2.5+\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let word = |i: usize| u32::from_le_bytes([text[i], text[i + 1], text[i + 2], text[i + 3]]);
        let mut raw = sample();
        for (n, l) in (0x8000_0002..=0x8000_0004u32).enumerate() {
            let o = n * 16;
            raw.leaves.push(leaf(l, NO_SUBLEAF, word(o), word(o + 4), word(o + 8), word(o + 12)));
        }
        assert_eq!(XenCpuPolicy::decode(raw, 1).brand().as_deref(), Some("QEMU Virtual CPU version 2.5+"));
    }

    #[test]
    fn encoding_round_trips_within_the_limits() {
        let shape = PolicyShape {
            vendor: CpuVendor::Amd,
            signature: 0x0006_63a1,
            max_basic_leaf: 0xd,
            max_extended_leaf: 0x8000_0021,
            max_leaf7_subleaf: 2,
            platform_info: 0,
        };
        let raw = encode_policy(&shape, &SAMPLE_WORDS);
        let p = XenCpuPolicy::decode(raw, 19);
        assert_eq!(p.featureset, SAMPLE_WORDS);
        assert_eq!(p.vendor, CpuVendor::Amd);
        assert_eq!((p.max_basic_leaf, p.max_extended_leaf, p.max_leaf7_subleaf), (0xd, 0x8000_0021, 2));
        assert_eq!(p.platform_info, Some(0));
        let order: Vec<(u32, u32)> = p.raw.leaves.iter().map(|l| (l.leaf, l.subleaf)).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|&(l, s)| (l, s.wrapping_add(1)));
        assert_eq!(order, sorted, "Xen's order: by leaf, then subleaf");

        // Narrower limits drop the words whose leaves they exclude.
        let narrow = PolicyShape { max_extended_leaf: 0x8000_0008, max_leaf7_subleaf: 0, ..shape };
        let fs = XenCpuPolicy::decode(encode_policy(&narrow, &SAMPLE_WORDS), 19).featureset;
        for w in [10, 11, 12, 13, 14, 15, 18] {
            assert_eq!(fs[w], 0, "word {w}");
        }
        assert_eq!(fs[..10], SAMPLE_WORDS[..10]);
        assert_eq!(fs[16..18], SAMPLE_WORDS[16..18]);
    }

    #[test]
    fn e1d_aliases_are_word_0s_common_bits_in_word_2() {
        // The lab's dom0 (Xen 4.17, qemu64): pv_max word 2 is 20100800, dom0's 2191cbf5.
        let dom0 = [0x1789_c3f5, 0x8000_2001, 0x2191_cbf5, 3];
        let pv_max = [0x1789_c3f5, 0x8020_2001, 0x2010_0800, 3];
        assert!(!featureset_is_subset(&dom0, &pv_max));
        assert!(featureset_is_subset(&without_e1d_aliases(&dom0), &pv_max));
        assert_eq!(with_e1d_aliases(&without_e1d_aliases(&dom0)), dom0);
        assert_eq!(without_e1d_aliases(&[1, 2]), [1, 2], "no word 2: unchanged");
    }

    #[test]
    fn subset_and_excess() {
        assert!(featureset_is_subset(&[0b0101, 0], &[0b1101, 1]));
        assert!(!featureset_is_subset(&[0b0101, 2], &[0b1101, 1]));
        assert!(!featureset_is_subset(&[0, 0, 1], &[0, 0]), "a missing outer word is 0");
        assert!(featureset_is_subset(&[1], &[1, 0xff]));
        assert_eq!(featureset_excess(&[0b0111, 0x8000_0000], &[0b0101]), [(0, 1), (1, 31)]);
    }
}
