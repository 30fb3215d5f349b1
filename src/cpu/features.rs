//! [`CpuFeatures`]: a featureset as Xen lays it out, with names.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::names::{self, Feature};

/// The most featureset words a [`CpuFeatures`] holds: far more than Xen's 19, it only keeps
/// a typo such as `<999999:1>` from allocating.
pub const MAX_WORDS: usize = 64;

/// One bit of a featureset: `(word, bit)`, named by Xen or not.
///
/// Its [`Display`](fmt::Display) is Xen's name, or `<word:bit>` (as xen-cpuid prints an
/// unnamed bit) when Xen has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureBit {
    word: usize,
    bit: u32,
}

impl FeatureBit {
    /// The bit `bit` (0–31) of word `word` (below [`MAX_WORDS`]).
    ///
    /// # Panics
    /// If `bit` is 32 or more or `word` is [`MAX_WORDS`] or more.
    pub const fn new(word: usize, bit: u32) -> Self {
        assert!(bit < 32 && word < MAX_WORDS, "a featureset bit is (word < 64, bit < 32)");
        FeatureBit { word, bit }
    }

    /// The featureset word.
    pub const fn word(self) -> usize {
        self.word
    }

    /// The bit within the word, 0–31.
    pub const fn bit(self) -> u32 {
        self.bit
    }

    /// Xen's feature at this bit, if it names one.
    pub fn feature(self) -> Option<&'static Feature> {
        names::by_bit(self.word, self.bit)
    }

    /// Xen's name of the bit, if it has one.
    pub fn name(self) -> Option<&'static str> {
        self.feature().map(|f| f.name)
    }

    /// The bit of a feature name: Xen's name or an alias (any case, `_` or `-`), or the
    /// `<word:bit>` form [`Display`](fmt::Display) gives an unnamed bit.
    pub fn parse(name: &str) -> Result<FeatureBit, FeatureNameError> {
        let trimmed = name.trim();
        if let Some(inner) = trimmed.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            return parse_raw(inner).ok_or_else(|| FeatureNameError::InvalidBit { text: trimmed.to_owned() });
        }
        if let Some(feature) = names::lookup(trimmed) {
            return Ok(feature.into());
        }
        if let Some(what) = names::not_a_feature(trimmed) {
            return Err(FeatureNameError::NotAFeature { name: trimmed.to_owned(), what });
        }
        Err(FeatureNameError::Unknown { name: trimmed.to_owned(), suggestions: names::nearest(trimmed, 3) })
    }
}

/// `word:bit`, both decimal.
fn parse_raw(inner: &str) -> Option<FeatureBit> {
    let (word, bit) = inner.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(word) || !digits(bit) {
        return None;
    }
    let (word, bit): (usize, u32) = (word.parse().ok()?, bit.parse().ok()?);
    (word < MAX_WORDS && bit < 32).then_some(FeatureBit { word, bit })
}

impl From<&Feature> for FeatureBit {
    fn from(f: &Feature) -> Self {
        FeatureBit::new(f.word, f.bit)
    }
}

impl fmt::Display for FeatureBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "<{}:{}>", self.word, self.bit),
        }
    }
}

impl FromStr for FeatureBit {
    type Err = FeatureNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FeatureBit::parse(s)
    }
}

/// A name that does not stand for a featureset bit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureNameError {
    /// Neither a Xen name nor an alias. `suggestions` are the nearest Xen names, nearest
    /// first (empty when none is close).
    #[error("unknown CPU feature {name:?}{}", suggest(suggestions))]
    Unknown {
        /// The name as written.
        name: String,
        /// The nearest known names.
        suggestions: Vec<&'static str>,
    },
    /// A name tools know that is not a featureset bit: a libxl value key such as
    /// `maxleaf`, or a CPUID bit outside Xen's featureset such as `psn`.
    #[error("{name:?} is not a CPU feature Xen's featureset has: it is {what}")]
    NotAFeature {
        /// The name as written.
        name: String,
        /// What it is instead.
        what: &'static str,
    },
    /// A `<word:bit>` that is malformed or out of range.
    #[error("{text:?} is not a featureset bit: expected <word:bit> with word 0-63 and bit 0-31")]
    InvalidBit {
        /// The text as written.
        text: String,
    },
}

fn suggest(suggestions: &[&str]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(": did you mean {one}?"),
        many => format!(": did you mean one of {}?", many.join(", ")),
    }
}

/// A set of CPU features in Xen's featureset layout: word `w` bit `b` is feature
/// `w * 32 + b` of `cpufeatureset.h` (word 0 = CPUID 1.edx, 1 = 1.ecx, 2 = 0x80000001.edx,
/// ... 16/17 = MSR_ARCH_CAPS, 18 = 0x80000021.ecx).
///
/// The number of words is whatever the source had (Xen's featureset has 14 to 19 words
/// between 4.17.0 and 4.22.0): it is kept as given, and a word beyond it counts as 0, so
/// two sets that differ only by trailing zero words are equal. Operations on two sets
/// give a set as long as the longer one; inserting a bit beyond the end grows the set.
///
/// [`Display`](fmt::Display) lists the set bits by Xen's names, separated by spaces, in
/// (word, bit) order, a bit Xen does not name as `<word:bit>`; [`FromStr`] reads such a
/// list back (spaces and/or commas between names, aliases accepted).
///
/// ```
/// use xenvcpu::cpu::CpuFeatures;
/// let host: CpuFeatures = "fpu sse2 sse4_1 avx2".parse()?;
/// let guest: CpuFeatures = "sse4.1, avx2".parse()?;
/// assert!(guest.is_subset(&host));
/// assert_eq!(host.difference(&guest).to_string(), "fpu sse2");
/// assert_eq!(guest.words(), &[0, 1 << 19, 0, 0, 0, 1 << 5]);
/// # Ok::<(), xenvcpu::cpu::FeatureNameError>(())
/// ```
#[derive(Clone, Default)]
pub struct CpuFeatures {
    words: Vec<u32>,
}

impl CpuFeatures {
    /// The empty set, with no words.
    pub const fn new() -> Self {
        CpuFeatures { words: Vec::new() }
    }

    /// A featureset of these words, kept at their length (at most [`MAX_WORDS`]; longer is
    /// cut, and only zero words may be cut by a caller that means it).
    pub fn from_words(words: impl Into<Vec<u32>>) -> Self {
        let mut words = words.into();
        words.truncate(MAX_WORDS);
        CpuFeatures { words }
    }

    /// The words, as many as the set was given or grew to.
    pub fn words(&self) -> &[u32] {
        &self.words
    }

    /// The words, `nr_words` of them: cut, or padded with zeros. Bits cut off are lost;
    /// [`CpuFeatures::beyond`] tells which they would be.
    pub fn to_words(&self, nr_words: usize) -> Vec<u32> {
        (0..nr_words).map(|w| self.word(w)).collect()
    }

    /// The bits set in words `nr_words` and up: those a featureset of `nr_words` words
    /// (an older Xen's) cannot hold.
    pub fn beyond(&self, nr_words: usize) -> CpuFeatures {
        let mut out = self.clone();
        for w in out.words.iter_mut().take(nr_words) {
            *w = 0;
        }
        out
    }

    /// How many words the set has.
    pub fn nr_words(&self) -> usize {
        self.words.len()
    }

    /// Word `w`, 0 beyond the end.
    pub fn word(&self, w: usize) -> u32 {
        self.words.get(w).copied().unwrap_or(0)
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// How many bits are set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the bit (a [`FeatureBit`], or a [`Feature`] of the table) is set.
    pub fn contains(&self, bit: impl Into<FeatureBit>) -> bool {
        let bit = bit.into();
        self.word(bit.word) & (1 << bit.bit) != 0
    }

    /// Whether the named feature is set.
    pub fn contains_name(&self, name: &str) -> Result<bool, FeatureNameError> {
        Ok(self.contains(FeatureBit::parse(name)?))
    }

    /// Sets the bit; `true` if it was not set.
    pub fn insert(&mut self, bit: impl Into<FeatureBit>) -> bool {
        let bit = bit.into();
        if self.words.len() <= bit.word {
            self.words.resize(bit.word + 1, 0);
        }
        let was = self.words[bit.word] & (1 << bit.bit) != 0;
        self.words[bit.word] |= 1 << bit.bit;
        !was
    }

    /// Sets the named feature; `true` if it was not set.
    pub fn insert_name(&mut self, name: &str) -> Result<bool, FeatureNameError> {
        Ok(self.insert(FeatureBit::parse(name)?))
    }

    /// Clears the bit; `true` if it was set. The number of words does not change.
    pub fn remove(&mut self, bit: impl Into<FeatureBit>) -> bool {
        let bit = bit.into();
        match self.words.get_mut(bit.word) {
            Some(w) if *w & (1 << bit.bit) != 0 => {
                *w &= !(1 << bit.bit);
                true
            }
            _ => false,
        }
    }

    /// Clears the named feature; `true` if it was set.
    pub fn remove_name(&mut self, name: &str) -> Result<bool, FeatureNameError> {
        Ok(self.remove(FeatureBit::parse(name)?))
    }

    fn zip(&self, other: &CpuFeatures, op: impl Fn(u32, u32) -> u32) -> CpuFeatures {
        let n = self.words.len().max(other.words.len());
        CpuFeatures { words: (0..n).map(|w| op(self.word(w), other.word(w))).collect() }
    }

    /// The bits set in either.
    pub fn union(&self, other: &CpuFeatures) -> CpuFeatures {
        self.zip(other, |a, b| a | b)
    }

    /// The bits set in both.
    pub fn intersection(&self, other: &CpuFeatures) -> CpuFeatures {
        self.zip(other, |a, b| a & b)
    }

    /// The bits set in `self` and not in `other`.
    pub fn difference(&self, other: &CpuFeatures) -> CpuFeatures {
        self.zip(other, |a, b| a & !b)
    }

    /// Whether every bit of `self` is set in `other`.
    pub fn is_subset(&self, other: &CpuFeatures) -> bool {
        self.difference(other).is_empty()
    }

    /// Whether no bit is set in both.
    pub fn is_disjoint(&self, other: &CpuFeatures) -> bool {
        self.intersection(other).is_empty()
    }

    /// The set bits, in (word, bit) order.
    pub fn iter(&self) -> impl Iterator<Item = FeatureBit> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(word, &w)| (0..32).filter(move |b| w & (1 << b) != 0).map(move |bit| FeatureBit { word, bit }))
    }

    /// The set bits Xen names, as its names, in (word, bit) order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().filter_map(FeatureBit::name).collect()
    }

    /// The set bits Xen does not name.
    pub fn unnamed(&self) -> Vec<FeatureBit> {
        self.iter().filter(|b| b.name().is_none()).collect()
    }

    /// The set of these features (names, aliases or `<word:bit>`), sized to hold them.
    /// Every name is checked: the error is the first that is not a feature.
    pub fn from_names<I, S>(names: I) -> Result<CpuFeatures, FeatureNameError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = CpuFeatures::new();
        for name in names {
            set.insert(FeatureBit::parse(name.as_ref())?);
        }
        Ok(set)
    }

    /// The set bits whose [`Feature`] satisfies `keep` (unnamed bits are dropped).
    pub fn filter(&self, keep: impl Fn(&Feature) -> bool) -> CpuFeatures {
        let mut out = CpuFeatures::from_words(vec![0; self.words.len()]);
        for bit in self.iter() {
            if bit.feature().is_some_and(&keep) {
                out.insert(bit);
            }
        }
        out
    }

    fn significant(&self) -> &[u32] {
        let len = self.words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        &self.words[..len]
    }
}

impl PartialEq for CpuFeatures {
    fn eq(&self, other: &Self) -> bool {
        self.significant() == other.significant()
    }
}

impl Eq for CpuFeatures {}

impl Hash for CpuFeatures {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, bit) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{bit}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.words.iter().map(|w| format!("{w:08x}")).collect();
        write!(f, "CpuFeatures({} = [{}])", words.join(":"), self)
    }
}

impl FromStr for CpuFeatures {
    type Err = FeatureNameError;

    /// Names separated by spaces and/or commas; the empty string is the empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CpuFeatures::from_names(s.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()))
    }
}

impl FromIterator<FeatureBit> for CpuFeatures {
    fn from_iter<T: IntoIterator<Item = FeatureBit>>(iter: T) -> Self {
        let mut set = CpuFeatures::new();
        for bit in iter {
            set.insert(bit);
        }
        set
    }
}

impl Extend<FeatureBit> for CpuFeatures {
    fn extend<T: IntoIterator<Item = FeatureBit>>(&mut self, iter: T) {
        for bit in iter {
            self.insert(bit);
        }
    }
}
