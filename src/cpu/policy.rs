//! [`CpuPolicy`]: what migration compatibility depends on (vendor, leaf limits,
//! PLATFORM_INFO, featureset), its JSON file, and [`compare`].

use std::fmt;
use std::str::FromStr;

use super::json::{self, Value};
use super::{CpuFeatures, FeatureBit, FeatureNameError};

/// A CPU vendor, as CPUID leaf 0 spells it (EBX, EDX, ECX).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD`.
    Amd,
    /// `HygonGenuine`.
    Hygon,
    /// `CentaurHauls`.
    Centaur,
    /// `  Shanghai  `.
    Shanghai,
    /// Any other 12 characters.
    Other(String),
}

impl Vendor {
    /// The 12-character CPUID string.
    pub fn as_str(&self) -> &str {
        match self {
            Vendor::Intel => "GenuineIntel",
            Vendor::Amd => "AuthenticAMD",
            Vendor::Hygon => "HygonGenuine",
            Vendor::Centaur => "CentaurHauls",
            Vendor::Shanghai => "  Shanghai  ",
            Vendor::Other(s) => s,
        }
    }

    /// The vendor of CPUID leaf 0's EBX, EDX and ECX (the string's bytes in that order,
    /// each register little-endian).
    pub fn from_registers(ebx: u32, edx: u32, ecx: u32) -> Vendor {
        let bytes: Vec<u8> = [ebx, edx, ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
        Vendor::from_cpuid(&String::from_utf8_lossy(&bytes))
    }

    fn from_cpuid(s: &str) -> Vendor {
        match s {
            "GenuineIntel" => Vendor::Intel,
            "AuthenticAMD" => Vendor::Amd,
            "HygonGenuine" => Vendor::Hygon,
            "CentaurHauls" => Vendor::Centaur,
            "  Shanghai  " => Vendor::Shanghai,
            other => Vendor::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Vendor {
    type Err = std::convert::Infallible;

    /// The CPUID string (`GenuineIntel`...); anything else is [`Vendor::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Vendor::from_cpuid(s))
    }
}

/// A CPU policy reduced to what decides whether a domain may move between hosts (§6 of
/// the design notes, after Xen's `x86_cpu_policies_are_compatible` plus the feature bits
/// it does not compare): vendor, the three leaf limits, PLATFORM_INFO and the featureset.
///
/// # JSON
/// [`to_json`](Self::to_json) writes, and [`from_json`](Self::from_json) reads, one
/// object (version 1; every number of a CPUID register in hex, as a string):
///
/// ```json
/// {
///   "version": 1,
///   "vendor": "GenuineIntel",
///   "max_leaf": "0x0000000d",
///   "max_subleaf_7": 2,
///   "max_ext_leaf": "0x80000021",
///   "platform_info": "0x0000000080000000",
///   "features": ["fpu", "vme", "<0:10>"],
///   "words": ["0x00000403", "0x00000000"]
/// }
/// ```
///
/// `words` is the featureset (as many words as it has) and is authoritative; `features`
/// is the same set by name for people and tools, in [`CpuFeatures`]' display order. On
/// reading, either may be left out (not both); when both are there they must agree.
/// Numbers may also be JSON numbers. `version`, `max_subleaf_7` and `platform_info` may
/// be left out (1, 0, 0). Any other member is an error, so that a typo is not ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuPolicy {
    /// The vendor (leaf 0).
    pub vendor: Vendor,
    /// The highest basic leaf (leaf 0 EAX).
    pub max_leaf: u32,
    /// The highest subleaf of leaf 7 (leaf 7:0 EAX).
    pub max_subleaf_7: u32,
    /// The highest extended leaf (0x80000000 EAX).
    pub max_ext_leaf: u32,
    /// MSR_PLATFORM_INFO (0xce); Xen uses bit 31, CPUID faulting.
    pub platform_info: u64,
    /// The featureset.
    pub features: CpuFeatures,
}

impl CpuPolicy {
    // A policy read from Xen comes from `XenCpuPolicy::to_portable` (the hypervisor
    // layer decodes Xen's serialised leaves; this module stays pure).

    /// The policy as JSON (see the type's documentation), pretty-printed, ending in a
    /// newline.
    pub fn to_json(&self) -> String {
        let list = |items: Vec<String>| -> String {
            if items.is_empty() {
                "[]".to_owned()
            } else {
                format!("[\n    {}\n  ]", items.join(",\n    "))
            }
        };
        let features = list(self.features.iter().map(|b| json::quote(&b.to_string())).collect());
        let words = list(self.features.words().iter().map(|w| format!("\"0x{w:08x}\"")).collect());
        format!(
            "{{\n  \"version\": 1,\n  \"vendor\": {},\n  \"max_leaf\": \"0x{:08x}\",\n  \"max_subleaf_7\": {},\n  \
             \"max_ext_leaf\": \"0x{:08x}\",\n  \"platform_info\": \"0x{:016x}\",\n  \"features\": {},\n  \
             \"words\": {}\n}}\n",
            json::quote(self.vendor.as_str()),
            self.max_leaf,
            self.max_subleaf_7,
            self.max_ext_leaf,
            self.platform_info,
            features,
            words,
        )
    }

    /// Reads a policy written by [`to_json`](Self::to_json) (or by hand, in that shape).
    pub fn from_json(text: &str) -> Result<CpuPolicy, PolicyJsonError> {
        let value = json::parse(text).map_err(|e| PolicyJsonError::Syntax {
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let Value::Object(members) = value else {
            return Err(PolicyJsonError::NotAnObject);
        };
        let mut fields = Fields::default();
        for (key, value, (line, column)) in members {
            let slot = match key.as_str() {
                "version" => &mut fields.version,
                "vendor" => &mut fields.vendor,
                "max_leaf" => &mut fields.max_leaf,
                "max_subleaf_7" => &mut fields.max_subleaf_7,
                "max_ext_leaf" => &mut fields.max_ext_leaf,
                "platform_info" => &mut fields.platform_info,
                "features" => &mut fields.features,
                "words" => &mut fields.words,
                _ => return Err(PolicyJsonError::UnknownMember { name: key, line, column }),
            };
            if slot.replace(value).is_some() {
                return Err(PolicyJsonError::DuplicateMember { name: key, line, column });
            }
        }
        if let Some(v) = fields.version {
            if number(&v, "version")? != 1 {
                return Err(PolicyJsonError::UnsupportedVersion { found: json_text(&v) });
            }
        }
        let vendor = match fields.vendor.ok_or(PolicyJsonError::Missing { name: "vendor" })? {
            Value::String(s) => Vendor::from_cpuid(&s),
            other => return Err(invalid("vendor", &other, "a string such as \"GenuineIntel\"")),
        };
        let u32_of = |v: Option<Value>, name: &'static str, default: Option<u32>| -> Result<u32, PolicyJsonError> {
            match v {
                None => default.ok_or(PolicyJsonError::Missing { name }),
                Some(v) => {
                    let n = number(&v, name)?;
                    u32::try_from(n).map_err(|_| invalid(name, &v, "a 32-bit number"))
                }
            }
        };
        let max_leaf = u32_of(fields.max_leaf, "max_leaf", None)?;
        let max_subleaf_7 = u32_of(fields.max_subleaf_7, "max_subleaf_7", Some(0))?;
        let max_ext_leaf = u32_of(fields.max_ext_leaf, "max_ext_leaf", None)?;
        let platform_info = match fields.platform_info {
            None => 0,
            Some(v) => number(&v, "platform_info")?,
        };
        let from_words = match fields.words {
            None => None,
            Some(Value::Array(items)) => {
                if items.len() > super::MAX_WORDS {
                    return Err(invalid("words", &Value::Array(items), "at most 64 words"));
                }
                let mut words = Vec::with_capacity(items.len());
                for item in &items {
                    let n = number(item, "words")?;
                    words.push(u32::try_from(n).map_err(|_| invalid("words", item, "32-bit words"))?);
                }
                Some(CpuFeatures::from_words(words))
            }
            Some(other) => return Err(invalid("words", &other, "an array of words such as \"0x178bfbff\"")),
        };
        let from_names = match fields.features {
            None => None,
            Some(Value::Array(items)) => {
                let mut set = CpuFeatures::new();
                for item in &items {
                    let Value::String(name) = item else {
                        return Err(invalid("features", item, "an array of feature names"));
                    };
                    set.insert(FeatureBit::parse(name).map_err(|source| PolicyJsonError::Feature { source })?);
                }
                Some(set)
            }
            Some(other) => return Err(invalid("features", &other, "an array of feature names")),
        };
        let features = match (from_words, from_names) {
            (None, None) => return Err(PolicyJsonError::Missing { name: "words" }),
            (Some(words), None) => words,
            (None, Some(names)) => names,
            (Some(words), Some(names)) => {
                if words != names {
                    return Err(PolicyJsonError::FeaturesDisagree {
                        only_in_words: words.difference(&names),
                        only_in_features: names.difference(&words),
                    });
                }
                words
            }
        };
        Ok(CpuPolicy { vendor, max_leaf, max_subleaf_7, max_ext_leaf, platform_info, features })
    }
}

#[derive(Default)]
struct Fields {
    version: Option<Value>,
    vendor: Option<Value>,
    max_leaf: Option<Value>,
    max_subleaf_7: Option<Value>,
    max_ext_leaf: Option<Value>,
    platform_info: Option<Value>,
    features: Option<Value>,
    words: Option<Value>,
}

/// A whole number: a JSON number without fraction or exponent, or a string of decimal
/// digits or `0x` and hex digits.
fn number(v: &Value, name: &'static str) -> Result<u64, PolicyJsonError> {
    let parsed = match v {
        Value::Number(s) => s.parse::<u64>().ok(),
        Value::String(s) => match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) if !hex.is_empty() && hex.len() <= 16 => u64::from_str_radix(hex, 16).ok(),
            Some(_) => None,
            None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
            None => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| invalid(name, v, "a whole number, or a string such as \"0x0000000d\""))
}

fn invalid(name: &'static str, v: &Value, expected: &'static str) -> PolicyJsonError {
    PolicyJsonError::InvalidMember { name, found: json_text(v), expected }
}

/// A short JSON rendering of a value, for messages.
fn json_text(v: &Value) -> String {
    let text = match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.clone(),
        Value::String(s) => json::quote(s),
        Value::Array(items) => format!("an array of {}", items.len()),
        Value::Object(_) => "an object".to_owned(),
    };
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// A policy file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyJsonError {
    /// Not JSON. The position is 1-based, in characters.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// The line.
        line: u32,
        /// The column.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// The JSON is not an object.
    #[error("a CPU policy is a JSON object")]
    NotAnObject,
    /// A member this format does not have.
    #[error(
        "line {line}, column {column}: unknown member {name:?} (a CPU policy has version, vendor, \
         max_leaf, max_subleaf_7, max_ext_leaf, platform_info, features and words)"
    )]
    UnknownMember {
        /// The member's name.
        name: String,
        /// Its line.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// A member given twice.
    #[error("line {line}, column {column}: member {name:?} is given twice")]
    DuplicateMember {
        /// The member's name.
        name: String,
        /// The line of the second.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// A member that must be there is not (`words` stands for "words or features").
    #[error("member {name:?} is missing{}", if *.name == "words" { " (give words, features or both)" } else { "" })]
    Missing {
        /// The member.
        name: &'static str,
    },
    /// A version other than 1.
    #[error("CPU policy version {found} is not supported: this xenvcpu reads version 1")]
    UnsupportedVersion {
        /// The version as written.
        found: String,
    },
    /// A member of the wrong type or range.
    #[error("member {name:?} is {found}: expected {expected}")]
    InvalidMember {
        /// The member.
        name: &'static str,
        /// What it is, in short.
        found: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A name in `features` that is no feature.
    #[error("in \"features\": {source}")]
    Feature {
        /// Why.
        source: FeatureNameError,
    },
    /// `words` and `features` describe different sets.
    #[error(
        "\"words\" and \"features\" disagree: only in words: [{only_in_words}]; only in features: \
         [{only_in_features}]"
    )]
    FeaturesDisagree {
        /// Bits set in `words` that `features` lacks.
        only_in_words: CpuFeatures,
        /// Features named that `words` lacks.
        only_in_features: CpuFeatures,
    },
}

/// A leaf limit of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeafLimit {
    /// The highest basic leaf.
    Basic,
    /// The highest subleaf of leaf 7.
    Leaf7Subleaf,
    /// The highest extended leaf.
    Extended,
}

impl fmt::Display for LeafLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeafLimit::Basic => "the highest basic CPUID leaf",
            LeafLimit::Leaf7Subleaf => "the highest subleaf of CPUID leaf 7",
            LeafLimit::Extended => "the highest extended CPUID leaf",
        })
    }
}

/// One reason a domain cannot move to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blocker {
    /// The vendors differ.
    Vendor {
        /// The domain's.
        guest: Vendor,
        /// The host's.
        host: Vendor,
    },
    /// The domain's leaf limit is above the host's.
    LeafLimit {
        /// Which limit.
        limit: LeafLimit,
        /// The domain's.
        guest: u32,
        /// The host's.
        host: u32,
    },
    /// PLATFORM_INFO bits the domain has and the host cannot give.
    PlatformInfo {
        /// The bits.
        missing: u64,
    },
    /// Features the domain has that the host's maximum lacks (and that may not differ):
    /// all of them.
    Features(CpuFeatures),
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Vendor { guest, host } => {
                write!(
                    f,
                    "the vendor differs: the domain's is {guest:?}, the host's {host:?}",
                    guest = guest.as_str(),
                    host = host.as_str()
                )
            }
            Blocker::LeafLimit { limit, guest, host } => {
                write!(f, "{limit} is 0x{guest:x} for the domain, above the host's 0x{host:x}")
            }
            Blocker::PlatformInfo { missing } => {
                write!(f, "MSR_PLATFORM_INFO bits 0x{missing:x} are the domain's and not the host's")
            }
            Blocker::Features(set) => write!(f, "features the host cannot give: {set}"),
        }
    }
}

/// The result of [`compare`]: the blockers (none means compatible) and the feature
/// differences that do not block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Compatibility {
    /// Every reason the domain cannot move; empty when it can.
    pub blockers: Vec<Blocker>,
    /// Accumulating (`|`) features the domain has and the host lacks: allowed, since
    /// they are meant to be visible if any host of the pool has them.
    pub accumulated: CpuFeatures,
    /// Special (`!`) features the domain has and the host lacks: not compared, since Xen
    /// overrides them itself.
    pub special: CpuFeatures,
    /// Accumulating features the host has and the domain does not see: not blocking, but
    /// the domain may miss a mitigation hint there (e.g. `md-clear`).
    pub hidden_accumulating: CpuFeatures,
}

impl Compatibility {
    /// Whether nothing blocks the move.
    pub fn is_compatible(&self) -> bool {
        self.blockers.is_empty()
    }

    /// The features that block, empty if none do.
    pub fn blocking_features(&self) -> CpuFeatures {
        self.blockers
            .iter()
            .find_map(|b| match b {
                Blocker::Features(set) => Some(set.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

impl fmt::Display for Compatibility {
    /// `compatible` or `incompatible: reason; reason`, then the notes, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.blockers.is_empty() {
            f.write_str("compatible")?;
        } else {
            let reasons: Vec<String> = self.blockers.iter().map(Blocker::to_string).collect();
            write!(f, "incompatible: {}", reasons.join("; "))?;
        }
        if !self.accumulated.is_empty() {
            write!(f, "\nallowed (accumulated across a pool): {}", self.accumulated)?;
        }
        if !self.special.is_empty() {
            write!(f, "\nnot compared (Xen decides these itself): {}", self.special)?;
        }
        if !self.hidden_accumulating.is_empty() {
            write!(f, "\nthe host has, hidden from the domain: {}", self.hidden_accumulating)?;
        }
        Ok(())
    }
}

/// Whether a domain whose policy is `guest` can run on a host whose maximum policy for
/// the domain's type is `host_max` (`hvm_max` or `pv_max`): the same vendor, each leaf
/// limit at most the host's, PLATFORM_INFO within the host's, and every feature within
/// the host's maximum, except:
/// - accumulating (`|`) features may be set where the host lacks them
///   ([`Compatibility::accumulated`]);
/// - special (`!`) features are not compared ([`Compatibility::special`]): Xen sets
///   them itself (`hypervisor`, `apic`, `osxsave`...);
/// - a feature the domain lacks never blocks; an accumulating one the host has is
///   noted ([`Compatibility::hidden_accumulating`]).
///
/// Bits Xen does not name are compared like any feature. Every blocker is listed.
pub fn compare(guest: &CpuPolicy, host_max: &CpuPolicy) -> Compatibility {
    let mut out = Compatibility::default();
    if guest.vendor != host_max.vendor {
        out.blockers.push(Blocker::Vendor { guest: guest.vendor.clone(), host: host_max.vendor.clone() });
    }
    for (limit, g, h) in [
        (LeafLimit::Basic, guest.max_leaf, host_max.max_leaf),
        (LeafLimit::Leaf7Subleaf, guest.max_subleaf_7, host_max.max_subleaf_7),
        (LeafLimit::Extended, guest.max_ext_leaf, host_max.max_ext_leaf),
    ] {
        if g > h {
            out.blockers.push(Blocker::LeafLimit { limit, guest: g, host: h });
        }
    }
    let missing_info = guest.platform_info & !host_max.platform_info;
    if missing_info != 0 {
        out.blockers.push(Blocker::PlatformInfo { missing: missing_info });
    }
    let extra = guest.features.difference(&host_max.features);
    out.accumulated = extra.filter(|f| f.accumulates());
    out.special = extra.filter(|f| f.is_special() && !f.accumulates());
    let blocking = extra.difference(&out.accumulated).difference(&out.special);
    if !blocking.is_empty() {
        out.blockers.push(Blocker::Features(blocking));
    }
    out.hidden_accumulating = host_max.features.difference(&guest.features).filter(|f| f.accumulates());
    out
}
