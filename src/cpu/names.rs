//! The feature names: one table of every named featureset bit of Xen 4.17 to 4.22, and
//! the other spellings that tools have used for them.
//!
//! The table is Xen's `xen/include/public/arch-x86/cpufeatureset.h` as of 4.22.0 (name,
//! word, bit, attribute, first release), transcribed from the facts gathered in
//! `xen-cpu-policy.md` Appendix A. Xen only ever appended names between 4.17.0 and 4.22.0
//! (none renamed, none removed, no bit reused), so one table serves every release: a bit
//! an older Xen does not know is simply never set by it.

use std::fmt;

/// A Xen release, as `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XenRelease {
    /// The major version (4).
    pub major: u8,
    /// The minor version (17 to 22).
    pub minor: u8,
    /// The point release.
    pub patch: u8,
}

impl fmt::Display for XenRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

const fn r(major: u8, minor: u8, patch: u8) -> XenRelease {
    XenRelease { major, minor, patch }
}

/// One named bit of Xen's featureset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Feature {
    /// Xen's name: the `XEN_CPUFEATURE` name in lower case with `_` turned into `-`, as
    /// libxl (4.17.2+) and xen-cpuid (4.19+) spell it, e.g. `sse4-1`, `lahf-lm`.
    pub name: &'static str,
    /// The featureset word (0 = CPUID 1.edx, 1 = 1.ecx, ... 18 = 0x80000021.ecx).
    pub word: usize,
    /// The bit in the word, 0 to 31.
    pub bit: u32,
    /// Xen 4.22's attribute characters from `cpufeatureset.h`, `""` for none: `!`
    /// special, `A`/`a` all guests, `S`/`s` HVM guests, `H`/`h` HAP guests (upper case:
    /// on by default; lower case: may be opted into), `|` accumulated across a migration
    /// pool. Xen says none of them is ABI; they are advice.
    pub attrs: &'static str,
    /// The first mainline release that names the bit.
    pub since: XenRelease,
    /// Whether the name was also backported to 4.17.7 (the 4.17 branch's last release).
    pub in_4_17_7: bool,
}

impl Feature {
    /// Whether the bit is special (`!`): "not a straight indication of a piece of new
    /// functionality"; Xen handles it differently and may override what the toolstack
    /// asks for.
    pub fn is_special(&self) -> bool {
        self.attrs.contains('!')
    }

    /// Whether the bit accumulates across a migration pool (`|`): a guest should see it
    /// if any host it may run on has it, instead of only if all have it.
    pub fn accumulates(&self) -> bool {
        self.attrs.contains('|')
    }

    /// Whether Xen may offer the bit to some guest (an `A`, `S` or `H` attribute, upper
    /// or lower case). A bit without one is host information only.
    pub fn offered_to_guests(&self) -> bool {
        self.attrs.chars().any(|c| matches!(c.to_ascii_uppercase(), 'A' | 'S' | 'H'))
    }

    /// Whether the bit is in a featureset of `nr_words` words.
    pub fn fits(&self, nr_words: usize) -> bool {
        self.word < nr_words
    }
}

const fn f(
    name: &'static str,
    word: usize,
    bit: u32,
    attrs: &'static str,
    since: XenRelease,
    in_4_17_7: bool,
) -> Feature {
    Feature { name, word, bit, attrs, since, in_4_17_7 }
}

/// Every named featureset bit, in (word, bit) order.
pub static FEATURES: &[Feature] = &[
    f("fpu", 0, 0, "A", r(4, 17, 0), false),
    f("vme", 0, 1, "S", r(4, 17, 0), false),
    f("de", 0, 2, "A", r(4, 17, 0), false),
    f("pse", 0, 3, "S", r(4, 17, 0), false),
    f("tsc", 0, 4, "A", r(4, 17, 0), false),
    f("msr", 0, 5, "A", r(4, 17, 0), false),
    f("pae", 0, 6, "A", r(4, 17, 0), false),
    f("mce", 0, 7, "A", r(4, 17, 0), false),
    f("cx8", 0, 8, "A", r(4, 17, 0), false),
    f("apic", 0, 9, "!A", r(4, 17, 0), false),
    f("sep", 0, 11, "A", r(4, 17, 0), false),
    f("mtrr", 0, 12, "S", r(4, 17, 0), false),
    f("pge", 0, 13, "S", r(4, 17, 0), false),
    f("mca", 0, 14, "A", r(4, 17, 0), false),
    f("cmov", 0, 15, "A", r(4, 17, 0), false),
    f("pat", 0, 16, "A", r(4, 17, 0), false),
    f("pse36", 0, 17, "S", r(4, 17, 0), false),
    f("clflush", 0, 19, "A", r(4, 17, 0), false),
    f("ds", 0, 21, "", r(4, 17, 0), false),
    f("acpi", 0, 22, "A", r(4, 17, 0), false),
    f("mmx", 0, 23, "A", r(4, 17, 0), false),
    f("fxsr", 0, 24, "A", r(4, 17, 0), false),
    f("sse", 0, 25, "A", r(4, 17, 0), false),
    f("sse2", 0, 26, "A", r(4, 17, 0), false),
    f("ss", 0, 27, "A", r(4, 17, 0), false),
    f("htt", 0, 28, "!A", r(4, 17, 0), false),
    f("tm1", 0, 29, "", r(4, 17, 0), false),
    f("pbe", 0, 31, "", r(4, 17, 0), false),
    f("sse3", 1, 0, "A", r(4, 17, 0), false),
    f("pclmulqdq", 1, 1, "A", r(4, 17, 0), false),
    f("dtes64", 1, 2, "", r(4, 17, 0), false),
    f("monitor", 1, 3, "", r(4, 17, 0), false),
    f("dscpl", 1, 4, "", r(4, 17, 0), false),
    f("vmx", 1, 5, "h", r(4, 17, 0), false),
    f("smx", 1, 6, "", r(4, 17, 0), false),
    f("eist", 1, 7, "", r(4, 17, 0), false),
    f("tm2", 1, 8, "", r(4, 17, 0), false),
    f("ssse3", 1, 9, "A", r(4, 17, 0), false),
    f("sdbg", 1, 11, "", r(4, 20, 0), false),
    f("fma", 1, 12, "A", r(4, 17, 0), false),
    f("cx16", 1, 13, "A", r(4, 17, 0), false),
    f("xtpr", 1, 14, "", r(4, 17, 0), false),
    f("pdcm", 1, 15, "", r(4, 17, 0), false),
    f("pcid", 1, 17, "H", r(4, 17, 0), false),
    f("dca", 1, 18, "", r(4, 17, 0), false),
    f("sse4-1", 1, 19, "A", r(4, 17, 0), false),
    f("sse4-2", 1, 20, "A", r(4, 17, 0), false),
    f("x2apic", 1, 21, "!S", r(4, 17, 0), false),
    f("movbe", 1, 22, "A", r(4, 17, 0), false),
    f("popcnt", 1, 23, "A", r(4, 17, 0), false),
    f("tsc-deadline", 1, 24, "S", r(4, 17, 0), false),
    f("aesni", 1, 25, "A", r(4, 17, 0), false),
    f("xsave", 1, 26, "A", r(4, 17, 0), false),
    f("osxsave", 1, 27, "!", r(4, 17, 0), false),
    f("avx", 1, 28, "A", r(4, 17, 0), false),
    f("f16c", 1, 29, "A", r(4, 17, 0), false),
    f("rdrand", 1, 30, "!A", r(4, 17, 0), false),
    f("hypervisor", 1, 31, "!A", r(4, 17, 0), false),
    f("syscall", 2, 11, "A", r(4, 17, 0), false),
    f("nx", 2, 20, "A", r(4, 17, 0), false),
    f("mmxext", 2, 22, "A", r(4, 17, 0), false),
    f("ffxsr", 2, 25, "A", r(4, 17, 0), false),
    f("page1gb", 2, 26, "H", r(4, 17, 0), false),
    f("rdtscp", 2, 27, "A", r(4, 17, 0), false),
    f("lm", 2, 29, "A", r(4, 17, 0), false),
    f("3dnowext", 2, 30, "A", r(4, 17, 0), false),
    f("3dnow", 2, 31, "A", r(4, 17, 0), false),
    f("lahf-lm", 3, 0, "A", r(4, 17, 0), false),
    f("cmp-legacy", 3, 1, "!A", r(4, 17, 0), false),
    f("svm", 3, 2, "h", r(4, 17, 0), false),
    f("extapic", 3, 3, "", r(4, 17, 0), false),
    f("cr8-legacy", 3, 4, "S", r(4, 17, 0), false),
    f("abm", 3, 5, "A", r(4, 17, 0), false),
    f("sse4a", 3, 6, "A", r(4, 17, 0), false),
    f("misalignsse", 3, 7, "A", r(4, 17, 0), false),
    f("3dnowprefetch", 3, 8, "A", r(4, 17, 0), false),
    f("osvw", 3, 9, "", r(4, 17, 0), false),
    f("ibs", 3, 10, "", r(4, 17, 0), false),
    f("xop", 3, 11, "A", r(4, 17, 0), false),
    f("skinit", 3, 12, "", r(4, 17, 0), false),
    f("wdt", 3, 13, "", r(4, 17, 0), false),
    f("lwp", 3, 15, "", r(4, 17, 0), false),
    f("fma4", 3, 16, "A", r(4, 17, 0), false),
    f("nodeid-msr", 3, 19, "", r(4, 17, 0), false),
    f("tbm", 3, 21, "A", r(4, 17, 0), false),
    f("topoext", 3, 22, "", r(4, 17, 0), false),
    f("dbext", 3, 26, "A", r(4, 17, 0), false),
    f("monitorx", 3, 29, "", r(4, 17, 0), false),
    f("addr-msk-ext", 3, 30, "A", r(4, 19, 0), false),
    f("xsaveopt", 4, 0, "A", r(4, 17, 0), false),
    f("xsavec", 4, 1, "A", r(4, 17, 0), false),
    f("xgetbv1", 4, 2, "A", r(4, 17, 0), false),
    f("xsaves", 4, 3, "S", r(4, 17, 0), false),
    f("xfd", 4, 4, "", r(4, 20, 0), false),
    f("fsgsbase", 5, 0, "A", r(4, 17, 0), false),
    f("tsc-adjust", 5, 1, "S", r(4, 17, 0), false),
    f("sgx", 5, 2, "", r(4, 17, 0), false),
    f("bmi1", 5, 3, "A", r(4, 17, 0), false),
    f("hle", 5, 4, "!a", r(4, 17, 0), false),
    f("avx2", 5, 5, "A", r(4, 17, 0), false),
    f("fdp-excp-only", 5, 6, "!", r(4, 17, 0), false),
    f("smep", 5, 7, "S", r(4, 17, 0), false),
    f("bmi2", 5, 8, "A", r(4, 17, 0), false),
    f("erms", 5, 9, "A", r(4, 17, 0), false),
    f("invpcid", 5, 10, "H", r(4, 17, 0), false),
    f("rtm", 5, 11, "!A", r(4, 17, 0), false),
    f("pqm", 5, 12, "", r(4, 17, 0), false),
    f("no-fpu-sel", 5, 13, "!", r(4, 17, 0), false),
    f("mpx", 5, 14, "s", r(4, 17, 0), false),
    f("pqe", 5, 15, "", r(4, 17, 0), false),
    f("avx512f", 5, 16, "A", r(4, 17, 0), false),
    f("avx512dq", 5, 17, "A", r(4, 17, 0), false),
    f("rdseed", 5, 18, "A", r(4, 17, 0), false),
    f("adx", 5, 19, "A", r(4, 17, 0), false),
    f("smap", 5, 20, "S", r(4, 17, 0), false),
    f("avx512-ifma", 5, 21, "A", r(4, 17, 0), false),
    f("clflushopt", 5, 23, "A", r(4, 17, 0), false),
    f("clwb", 5, 24, "!A", r(4, 17, 0), false),
    f("proc-trace", 5, 25, "", r(4, 17, 0), false),
    f("avx512pf", 5, 26, "", r(4, 17, 0), false),
    f("avx512er", 5, 27, "", r(4, 17, 0), false),
    f("avx512cd", 5, 28, "A", r(4, 17, 0), false),
    f("sha", 5, 29, "A", r(4, 17, 0), false),
    f("avx512bw", 5, 30, "A", r(4, 17, 0), false),
    f("avx512vl", 5, 31, "A", r(4, 17, 0), false),
    f("prefetchwt1", 6, 0, "A", r(4, 17, 0), false),
    f("avx512-vbmi", 6, 1, "A", r(4, 17, 0), false),
    f("umip", 6, 2, "S", r(4, 17, 0), false),
    f("pku", 6, 3, "H", r(4, 17, 0), false),
    f("ospke", 6, 4, "!", r(4, 17, 0), false),
    f("waitpkg", 6, 5, "", r(4, 20, 0), false),
    f("avx512-vbmi2", 6, 6, "A", r(4, 17, 0), false),
    f("cet-ss", 6, 7, "", r(4, 17, 0), false),
    f("gfni", 6, 8, "A", r(4, 17, 0), false),
    f("vaes", 6, 9, "A", r(4, 17, 0), false),
    f("vpclmulqdq", 6, 10, "A", r(4, 17, 0), false),
    f("avx512-vnni", 6, 11, "A", r(4, 17, 0), false),
    f("avx512-bitalg", 6, 12, "A", r(4, 17, 0), false),
    f("tme", 6, 13, "", r(4, 20, 0), false),
    f("avx512-vpopcntdq", 6, 14, "A", r(4, 17, 0), false),
    f("la57", 6, 16, "", r(4, 20, 0), false),
    f("rdpid", 6, 22, "A", r(4, 17, 0), false),
    f("bld", 6, 24, "", r(4, 18, 0), false),
    f("cldemote", 6, 25, "A", r(4, 17, 0), false),
    f("movdiri", 6, 27, "a", r(4, 17, 0), false),
    f("movdir64b", 6, 28, "a", r(4, 17, 0), false),
    f("enqcmd", 6, 29, "", r(4, 17, 0), false),
    f("sgx-lc", 6, 30, "", r(4, 20, 0), false),
    f("pks", 6, 31, "H", r(4, 18, 0), false),
    f("hw-pstate", 7, 7, "", r(4, 17, 0), false),
    f("itsc", 7, 8, "a", r(4, 17, 0), false),
    f("cpb", 7, 9, "", r(4, 17, 0), false),
    f("efro", 7, 10, "", r(4, 17, 0), false),
    f("clzero", 8, 0, "A", r(4, 17, 0), false),
    f("rstr-fp-err-ptrs", 8, 2, "A", r(4, 17, 0), false),
    f("wbnoinvd", 8, 9, "", r(4, 17, 0), false),
    f("ibpb", 8, 12, "A", r(4, 17, 0), false),
    f("ibrs", 8, 14, "S", r(4, 17, 0), false),
    f("amd-stibp", 8, 15, "S", r(4, 17, 0), false),
    f("ibrs-always", 8, 16, "S", r(4, 17, 0), false),
    f("stibp-always", 8, 17, "S", r(4, 17, 0), false),
    f("ibrs-fast", 8, 18, "S", r(4, 17, 0), false),
    f("ibrs-same-mode", 8, 19, "S", r(4, 17, 0), false),
    f("no-lmsl", 8, 20, "S|", r(4, 17, 0), false),
    f("amd-ppin", 8, 23, "", r(4, 17, 0), false),
    f("amd-ssbd", 8, 24, "S", r(4, 17, 0), false),
    f("virt-ssbd", 8, 25, "!", r(4, 17, 0), false),
    f("ssb-no", 8, 26, "A", r(4, 17, 0), false),
    f("cppc", 8, 27, "", r(4, 21, 0), false),
    f("psfd", 8, 28, "S", r(4, 17, 0), false),
    f("btc-no", 8, 29, "A", r(4, 17, 0), false),
    f("ibpb-ret", 8, 30, "A", r(4, 17, 0), false),
    f("sgx-keys", 9, 1, "", r(4, 20, 0), false),
    f("avx512-4vnniw", 9, 2, "", r(4, 17, 0), false),
    f("avx512-4fmaps", 9, 3, "", r(4, 17, 0), false),
    f("fsrm", 9, 4, "A", r(4, 17, 0), false),
    f("uintr", 9, 5, "", r(4, 19, 0), false),
    f("avx512-vp2intersect", 9, 8, "a", r(4, 17, 0), false),
    f("srbds-ctrl", 9, 9, "", r(4, 17, 0), false),
    f("md-clear", 9, 10, "!A|", r(4, 17, 0), false),
    f("rtm-always-abort", 9, 11, "!", r(4, 17, 0), false),
    f("tsx-force-abort", 9, 13, "", r(4, 17, 0), false),
    f("serialize", 9, 14, "A", r(4, 17, 0), false),
    f("hybrid", 9, 15, "", r(4, 19, 0), true),
    f("tsxldtrk", 9, 16, "a", r(4, 17, 0), false),
    f("pconfig", 9, 18, "", r(4, 20, 0), false),
    f("arch-lbr", 9, 19, "", r(4, 19, 0), false),
    f("cet-ibt", 9, 20, "", r(4, 17, 0), false),
    f("amx-bf16", 9, 22, "", r(4, 20, 0), false),
    f("avx512-fp16", 9, 23, "A", r(4, 17, 0), false),
    f("amx-tile", 9, 24, "", r(4, 19, 0), false),
    f("amx-int8", 9, 25, "", r(4, 20, 0), false),
    f("ibrsb", 9, 26, "A", r(4, 17, 0), false),
    f("stibp", 9, 27, "A", r(4, 17, 0), false),
    f("l1d-flush", 9, 28, "S", r(4, 17, 0), false),
    f("arch-caps", 9, 29, "!A", r(4, 17, 0), false),
    f("core-caps", 9, 30, "", r(4, 17, 0), false),
    f("ssbd", 9, 31, "A", r(4, 17, 0), false),
    f("sha512", 10, 0, "A", r(4, 19, 0), false),
    f("sm3", 10, 1, "A", r(4, 19, 0), false),
    f("sm4", 10, 2, "A", r(4, 19, 0), false),
    f("avx-vnni", 10, 4, "A", r(4, 17, 0), false),
    f("avx512-bf16", 10, 5, "A", r(4, 17, 0), false),
    f("lass", 10, 6, "s", r(4, 21, 0), false),
    f("cmpccxadd", 10, 7, "a", r(4, 20, 0), false),
    f("arch-perf-mon", 10, 8, "", r(4, 21, 0), false),
    f("fzrm", 10, 10, "A", r(4, 17, 0), false),
    f("fsrs", 10, 11, "A", r(4, 17, 0), false),
    f("fsrcs", 10, 12, "A", r(4, 17, 0), false),
    f("fred", 10, 17, "", r(4, 21, 0), false),
    f("lkgs", 10, 18, "", r(4, 21, 0), false),
    f("wrmsrns", 10, 19, "S", r(4, 18, 0), false),
    f("nmi-src", 10, 20, "", r(4, 21, 0), false),
    f("amx-fp16", 10, 21, "", r(4, 20, 0), false),
    f("avx-ifma", 10, 23, "A", r(4, 18, 0), false),
    f("lam", 10, 26, "", r(4, 21, 0), false),
    f("msrlist", 10, 27, "", r(4, 21, 0), false),
    f("no-invd", 10, 30, "", r(4, 21, 0), false),
    f("no-nest-bp", 11, 0, "A", r(4, 19, 0), false),
    f("fs-gs-ns", 11, 1, "S|", r(4, 19, 0), false),
    f("lfence-dispatch", 11, 2, "A", r(4, 17, 0), false),
    f("verw-clear", 11, 5, "!A|", r(4, 21, 0), true),
    f("nscb", 11, 6, "A", r(4, 17, 0), false),
    f("auto-ibrs", 11, 8, "S", r(4, 18, 0), true),
    f("amd-fsrs", 11, 10, "A", r(4, 19, 0), false),
    f("amd-fsrc", 11, 11, "A", r(4, 19, 0), false),
    f("cpuid-user-dis", 11, 17, "", r(4, 18, 0), false),
    f("epsf", 11, 18, "A", r(4, 19, 0), false),
    f("fsrsc", 11, 19, "A", r(4, 19, 0), false),
    f("amd-prefetchi", 11, 20, "A", r(4, 19, 0), false),
    f("avx512-bmm", 11, 23, "a", r(4, 22, 0), false),
    f("sbpb", 11, 27, "A", r(4, 18, 0), true),
    f("ibpb-brtype", 11, 28, "A", r(4, 18, 0), true),
    f("srso-no", 11, 29, "A", r(4, 18, 0), true),
    f("srso-us-no", 11, 30, "A!", r(4, 20, 0), true),
    f("srso-msr-fix", 11, 31, "", r(4, 20, 0), true),
    f("intel-ppin", 12, 0, "", r(4, 17, 0), false),
    f("intel-psfd", 13, 0, "A", r(4, 17, 0), false),
    f("ipred-ctrl", 13, 1, "S", r(4, 17, 0), false),
    f("rrsba-ctrl", 13, 2, "S", r(4, 17, 0), false),
    f("ddp-ctrl", 13, 3, "", r(4, 18, 0), false),
    f("bhi-ctrl", 13, 4, "S", r(4, 17, 0), false),
    f("mcdt-no", 13, 5, "A", r(4, 17, 0), false),
    f("uc-lock-dis", 13, 6, "", r(4, 21, 0), false),
    f("avx-vnni-int8", 15, 4, "A", r(4, 18, 0), false),
    f("avx-ne-convert", 15, 5, "A", r(4, 18, 0), false),
    f("amx-complex", 15, 8, "", r(4, 20, 0), false),
    f("avx-vnni-int16", 15, 10, "A", r(4, 19, 0), false),
    f("prefetchi", 15, 14, "A", r(4, 19, 0), false),
    f("uiret-uif", 15, 17, "", r(4, 21, 0), false),
    f("cet-sss", 15, 18, "", r(4, 18, 0), true),
    f("slsm", 15, 24, "", r(4, 21, 0), false),
    f("rdcl-no", 16, 0, "A", r(4, 18, 0), true),
    f("eibrs", 16, 1, "A", r(4, 18, 0), true),
    f("rsba", 16, 2, "!", r(4, 18, 0), true),
    f("skip-l1dfl", 16, 3, "", r(4, 18, 0), true),
    f("intel-ssb-no", 16, 4, "A", r(4, 18, 0), true),
    f("mds-no", 16, 5, "A", r(4, 18, 0), true),
    f("if-pschange-mc-no", 16, 6, "A", r(4, 18, 0), true),
    f("tsx-ctrl", 16, 7, "", r(4, 18, 0), true),
    f("taa-no", 16, 8, "A", r(4, 18, 0), true),
    f("mcu-ctrl", 16, 9, "", r(4, 18, 0), true),
    f("misc-pkg-ctrl", 16, 10, "", r(4, 18, 0), true),
    f("energy-filtering", 16, 11, "", r(4, 18, 0), true),
    f("doitm", 16, 12, "", r(4, 18, 0), true),
    f("sbdr-ssdp-no", 16, 13, "A", r(4, 18, 0), true),
    f("fbsdp-no", 16, 14, "A", r(4, 18, 0), true),
    f("psdp-no", 16, 15, "A", r(4, 18, 0), true),
    f("mcu-ext", 16, 16, "", r(4, 21, 0), false),
    f("fb-clear", 16, 17, "!A|", r(4, 18, 0), true),
    f("fb-clear-ctrl", 16, 18, "", r(4, 18, 0), true),
    f("rrsba", 16, 19, "!", r(4, 18, 0), true),
    f("bhi-no", 16, 20, "A", r(4, 18, 0), true),
    f("xapic-status", 16, 21, "", r(4, 18, 0), true),
    f("ovrclk-status", 16, 23, "", r(4, 18, 0), true),
    f("pbrsb-no", 16, 24, "A", r(4, 18, 0), true),
    f("gds-ctrl", 16, 25, "", r(4, 18, 0), true),
    f("gds-no", 16, 26, "A", r(4, 18, 0), true),
    f("rfds-no", 16, 27, "A", r(4, 19, 0), true),
    f("rfds-clear", 16, 28, "!A|", r(4, 19, 0), true),
    f("ign-umonitor", 16, 29, "", r(4, 21, 0), false),
    f("mon-umon-mitg", 16, 30, "", r(4, 21, 0), false),
    f("pb-opt-ctrl", 17, 0, "", r(4, 21, 0), false),
    f("its-no", 17, 30, "!A", r(4, 21, 0), true),
    f("tsa-sq-no", 18, 1, "A", r(4, 21, 0), true),
    f("tsa-l1-no", 18, 2, "A", r(4, 21, 0), true),
];

/// Which tool spells a feature with an [`Alias`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AliasSource {
    /// libxl's hand-written `cpuid=` table (every key of 4.17.0's, still accepted by 4.22).
    Libxl,
    /// xen-cpuid of 4.17 and 4.18, which printed its own hand-written names.
    XenCpuid,
    /// libvirt's CPU feature names (its `cpu_map`, and the libxl driver's translations).
    Libvirt,
}

impl AliasSource {
    /// The tool's name, for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            AliasSource::Libxl => "libxl",
            AliasSource::XenCpuid => "xen-cpuid 4.17/4.18",
            AliasSource::Libvirt => "libvirt",
        }
    }
}

/// Another spelling of a feature, accepted when parsing and never printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alias {
    /// The spelling, already normalised (lower case, `_` as `-`).
    pub alias: &'static str,
    /// Xen's name of the feature it stands for.
    pub name: &'static str,
    /// The tool that uses it (the first one, when several do).
    pub source: AliasSource,
}

const fn a(alias: &'static str, name: &'static str, source: AliasSource) -> Alias {
    Alias { alias, name, source }
}

use AliasSource::{Libvirt, Libxl, XenCpuid};

/// Every alias. Spellings that only differ from Xen's name by case or `_` need none (the
/// parser normalises them), e.g. libxl's `sse4_1` or libvirt's `lahf_lm`.
///
/// Two notes: `clfsh` (libxl) is the CLFLUSH *feature*, whose Xen name `clflush` is also
/// libxl's key for the CLFLUSH line size, so a `cpuid=` string must say `clfsh`; and
/// `ppin`, which xen-cpuid 4.17/4.18 printed for both `amd-ppin` and `intel-ppin`, means
/// `amd-ppin` as in libxl.
pub static ALIASES: &[Alias] = &[
    // libxl's legacy table (tools/libs/light/libxl_cpuid.c).
    a("est", "eist", Libxl),
    a("cmpxchg16", "cx16", Libxl),
    a("sse4.1", "sse4-1", Libxl),
    a("sse4.2", "sse4-2", Libxl),
    a("aes", "aesni", Libxl),
    a("cmpxchg8", "cx8", Libxl),
    a("sysenter", "sep", Libxl),
    a("clfsh", "clflush", Libxl),
    a("tm", "tm1", Libxl),
    a("cmt", "pqm", Libxl),
    a("lahfsahf", "lahf-lm", Libxl),
    a("cmplegacy", "cmp-legacy", Libxl),
    a("altmovcr8", "cr8-legacy", Libxl),
    a("nodeid", "nodeid-msr", Libxl),
    a("invtsc", "itsc", Libxl),
    a("ppin", "amd-ppin", Libxl),
    a("lfence+", "lfence-dispatch", Libxl),
    // xen-cpuid 4.17 and 4.18 (tools/misc/xen-cpuid.c before 4.19).
    a("ds-cpl", "dscpl", XenCpuid),
    a("sdgb", "sdbg", XenCpuid),
    a("sse41", "sse4-1", XenCpuid),
    a("sse42", "sse4-2", XenCpuid),
    a("movebe", "movbe", XenCpuid),
    a("tsc-dl", "tsc-deadline", XenCpuid),
    a("rdrnd", "rdrand", XenCpuid),
    a("hyper", "hypervisor", XenCpuid),
    a("mmx+", "mmxext", XenCpuid),
    a("fxsr+", "ffxsr", XenCpuid),
    a("pg1g", "page1gb", XenCpuid),
    a("3dnow+", "3dnowext", XenCpuid),
    a("cmp", "cmp-legacy", XenCpuid),
    a("cr8d", "cr8-legacy", XenCpuid),
    a("lzcnt", "abm", XenCpuid),
    a("msse", "misalignsse", XenCpuid),
    a("3dnowpf", "3dnowprefetch", XenCpuid),
    a("dbx", "dbext", XenCpuid),
    a("tsc-adj", "tsc-adjust", XenCpuid),
    a("fdp-exn", "fdp-excp-only", XenCpuid),
    a("depfpp", "no-fpu-sel", XenCpuid),
    a("energy-ctrl", "energy-filtering", XenCpuid),
    // libvirt (its x86 cpu_map names, and the libxl driver's translation table).
    a("pni", "sse3", Libvirt),
    a("ht", "htt", Libvirt),
    a("pclmuldq", "pclmulqdq", Libvirt),
    a("cr8legacy", "cr8-legacy", Libvirt),
    a("fxsr-opt", "ffxsr", Libvirt),
    a("pdpe1gb", "page1gb", Libvirt),
    a("spec-ctrl", "ibrsb", Libvirt),
    a("arch-capabilities", "arch-caps", Libvirt),
    a("core-capability", "core-caps", Libvirt),
    a("flush-l1d", "l1d-flush", Libvirt),
    a("intel-pt", "proc-trace", Libvirt),
    a("avx512ifma", "avx512-ifma", Libvirt),
    a("avx512vbmi", "avx512-vbmi", Libvirt),
    a("avx512vbmi2", "avx512-vbmi2", Libvirt),
    a("avx512vnni", "avx512-vnni", Libvirt),
    a("avx512bitalg", "avx512-bitalg", Libvirt),
    a("rdctl-no", "rdcl-no", Libvirt),
    a("ibrs-all", "eibrs", Libvirt),
];

/// Names that tools accept or print but that are not a featureset bit, with what they
/// are instead. Parsing one is [`FeatureNameError::NotAFeature`](super::FeatureNameError),
/// not "unknown".
pub static NOT_FEATURES: &[(&str, &str)] = &[
    ("maxleaf", "libxl's key for the maximum basic CPUID leaf (a number)"),
    ("stepping", "libxl's key for the CPU stepping (a number)"),
    ("model", "libxl's key for the CPU model (a number)"),
    ("family", "libxl's key for the CPU family (a number)"),
    ("brandid", "libxl's key for the brand index (a number)"),
    ("proccount", "libxl's key for the logical processor count (a number)"),
    ("localapicid", "libxl's key for the initial APIC id (a number)"),
    ("procpkg", "libxl's key for the core count of 0x80000008 (a number)"),
    ("nc", "libxl's key for the core count of 0x80000008 (a number)"),
    ("apicidsize", "libxl's key for the APIC id size of 0x80000008 (a number)"),
    ("maxhvleaf", "libxl's key for the maximum hypervisor leaf (a number)"),
    ("cntxid", "CPUID 1.ecx bit 10, which Xen's featureset does not name"),
    ("cntx-id", "CPUID 1.ecx bit 10, which Xen's featureset does not name"),
    ("cid", "CPUID 1.ecx bit 10, which Xen's featureset does not name"),
    ("psn", "CPUID 1.edx bit 18, which Xen's featureset does not name"),
    ("pn", "CPUID 1.edx bit 18, which Xen's featureset does not name"),
    ("ia64", "CPUID 1.edx bit 30, which Xen's featureset does not name"),
    ("fcmov", "CPUID 0x80000001.edx bit 16, which Xen's featureset does not name"),
    ("mp", "CPUID 0x80000001.edx bit 19, which Xen's featureset does not name"),
    ("tce", "CPUID 0x80000001.ecx bit 17, which Xen's featureset does not name"),
    ("perfctr-core", "CPUID 0x80000001.ecx bit 23, which Xen's featureset does not name"),
    ("perfctr-nb", "CPUID 0x80000001.ecx bit 24, which Xen's featureset does not name"),
    ("perftsc", "CPUID 0x80000001.ecx bit 27, which Xen's featureset does not name"),
    ("pcx-l2i", "CPUID 0x80000001.ecx bit 28, which Xen's featureset does not name"),
    ("pcommit", "CPUID 7:0.ebx bit 22, which Xen's featureset does not name"),
    ("arat", "CPUID 6.eax bit 2, outside Xen's featureset"),
    ("svm-npt", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
    ("svm-lbrv", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
    ("svm-nrips", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
    ("svm-tscrate", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
    ("svm-vmcbclean", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
    ("svm-decode", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
    ("svm-pausefilt", "an SVM feature of CPUID 0x8000000a.edx, outside Xen's featureset"),
];

/// A name as Xen's rule writes it: lower case, `_` as `-`, surrounding space removed.
pub fn normalise(name: &str) -> String {
    name.trim().chars().map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() }).collect()
}

/// The feature of a Xen name or an alias, in any case and with `_` or `-`.
pub fn lookup(name: &str) -> Option<&'static Feature> {
    let name = normalise(name);
    let name = ALIASES.iter().find(|a| a.alias == name).map_or(name.as_str(), |a| a.name);
    FEATURES.iter().find(|f| f.name == name)
}

/// The feature at `(word, bit)`, if Xen names it.
pub fn by_bit(word: usize, bit: u32) -> Option<&'static Feature> {
    // The table is sorted by (word, bit).
    FEATURES.binary_search_by(|f| (f.word, f.bit).cmp(&(word, bit))).ok().map(|i| &FEATURES[i])
}

/// What a name that is not a feature is instead, if it is a known non-feature key.
pub(crate) fn not_a_feature(name: &str) -> Option<&'static str> {
    let name = normalise(name);
    NOT_FEATURES.iter().find(|(n, _)| *n == name).map(|(_, what)| *what)
}

/// Up to `max` Xen names nearest to `name` (by edit distance, over names and aliases),
/// nearest first; none when nothing is near enough to be a plausible typo.
pub fn nearest(name: &str, max: usize) -> Vec<&'static str> {
    let name = normalise(name);
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &'static str)> = FEATURES
        .iter()
        .map(|f| (f.name, f.name))
        .chain(ALIASES.iter().map(|a| (a.alias, a.name)))
        .filter_map(|(spelling, target)| {
            let d = distance(&name, spelling);
            // A name that starts another (`avx512` in `avx512f`) is near too.
            let d = if spelling.starts_with(name.as_str()) && name.len() >= 3 { d.min(1) } else { d };
            (d <= limit).then_some((d, target))
        })
        .collect();
    scored.sort();
    let mut out: Vec<&'static str> = Vec::new();
    for (_, target) in scored {
        if !out.contains(&target) {
            out.push(target);
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// The Levenshtein distance between two strings, counting characters, where swapping
/// two neighbours counts as one edit (so `sse24` is one away from `sse42`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the dynamic programme: two back, one back, current.
    let mut two_back: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut two_back, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in FEATURES.windows(2) {
            assert!((pair[0].word, pair[0].bit) < (pair[1].word, pair[1].bit), "{:?}", pair);
        }
        for f in FEATURES {
            assert!(f.bit < 32);
            assert_eq!(f.name, normalise(f.name), "{} is not in Xen's spelling", f.name);
            assert_eq!(FEATURES.iter().filter(|g| g.name == f.name).count(), 1, "{}", f.name);
        }
        assert_eq!(FEATURES.len(), 286);
    }

    #[test]
    fn aliases_point_at_features_and_do_not_shadow_them() {
        for a in ALIASES {
            assert!(FEATURES.iter().any(|f| f.name == a.name), "{} -> {}", a.alias, a.name);
            assert!(FEATURES.iter().all(|f| f.name != a.alias), "{} shadows a name", a.alias);
            assert_eq!(a.alias, normalise(a.alias));
        }
        for (n, _) in NOT_FEATURES {
            assert!(lookup(n).is_none(), "{n}");
        }
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("sse42", "sse24"), 1);
        assert_eq!(distance("avx", "avx2"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
