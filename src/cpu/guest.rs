//! A guest's `<cpu>` from libvirt domain XML: the features it asks for, checked against a
//! host and turned into libxl's `cpuid=` string, and its `<topology>`.

use std::fmt;

use roxmltree::{Document, Node};

use super::{CpuFeatures, FeatureBit, FeatureNameError};

/// What a `<feature>` asks for, in libvirt's words.
///
/// The RFC's form maps onto it: `mode='check' value='on'` is [`Require`](Self::Require),
/// `check`/`off` is [`Forbid`](Self::Forbid), `set`/`on` is [`Force`](Self::Force) and
/// `set`/`off` is [`Disable`](Self::Disable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeaturePolicy {
    /// On, whatever the host has (`cpuid=` `name=1`).
    Force,
    /// On, and the domain must not start unless the host has it and the guest type may
    /// have it (`name=1` after [`GuestCpu::check`]).
    Require,
    /// Whatever the host has: no `cpuid=` token.
    Optional,
    /// Off (`name=0`).
    Disable,
    /// Off, and the domain must not start if the host has it (`name=0` after
    /// [`GuestCpu::check`]).
    Forbid,
}

impl FeaturePolicy {
    /// libvirt's attribute value: `force`, `require`, `optional`, `disable` or `forbid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeaturePolicy::Force => "force",
            FeaturePolicy::Require => "require",
            FeaturePolicy::Optional => "optional",
            FeaturePolicy::Disable => "disable",
            FeaturePolicy::Forbid => "forbid",
        }
    }

    /// The policy of libvirt's `policy` attribute value.
    pub fn from_libvirt(value: &str) -> Option<FeaturePolicy> {
        Some(match value {
            "force" => FeaturePolicy::Force,
            "require" => FeaturePolicy::Require,
            "optional" => FeaturePolicy::Optional,
            "disable" => FeaturePolicy::Disable,
            "forbid" => FeaturePolicy::Forbid,
            _ => return None,
        })
    }

    /// The `cpuid=` value: `Some(true)` for `=1`, `Some(false)` for `=0`, `None` for no
    /// token ([`Optional`](Self::Optional)).
    pub const fn cpuid_value(self) -> Option<bool> {
        match self {
            FeaturePolicy::Force | FeaturePolicy::Require => Some(true),
            FeaturePolicy::Disable | FeaturePolicy::Forbid => Some(false),
            FeaturePolicy::Optional => None,
        }
    }
}

impl fmt::Display for FeaturePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `mode` attribute of `<cpu>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuMode {
    /// `custom` (libvirt's default): a named model plus features.
    Custom,
    /// `host-model`.
    HostModel,
    /// `host-passthrough`: the only mode libvirt's libxl driver honours.
    HostPassthrough,
    /// `maximum`.
    Maximum,
}

impl CpuMode {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            CpuMode::Custom => "custom",
            CpuMode::HostModel => "host-model",
            CpuMode::HostPassthrough => "host-passthrough",
            CpuMode::Maximum => "maximum",
        }
    }
}

/// A `<topology>`: `sockets × dies × clusters × cores × threads` vCPUs (libvirt's `dies`
/// and `clusters` are 1 when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topology {
    /// Sockets.
    pub sockets: u32,
    /// Dies per socket.
    pub dies: u32,
    /// Clusters per die.
    pub clusters: u32,
    /// Cores per cluster.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

impl Topology {
    /// How many vCPUs the topology describes: the product of its numbers.
    pub fn vcpus(&self) -> u64 {
        [self.sockets, self.dies, self.clusters, self.cores, self.threads].iter().map(|&n| u64::from(n)).product()
    }

    /// libvirt's rule: the topology must describe exactly the domain's maximum vCPU count
    /// (`<vcpu>`), else "CPU topology doesn't match maximum vcpu count".
    pub fn check(&self, max_vcpus: u32) -> Result<(), GuestCpuError> {
        if self.vcpus() == u64::from(max_vcpus) {
            Ok(())
        } else {
            Err(GuestCpuError::TopologyMismatch { topology: *self, described: self.vcpus(), max_vcpus })
        }
    }
}

impl fmt::Display for Topology {
    /// `2 sockets × 4 cores × 2 threads`, with dies and clusters only when not 1.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![plural(self.sockets, "socket")];
        if self.dies != 1 {
            parts.push(plural(self.dies, "die"));
        }
        if self.clusters != 1 {
            parts.push(plural(self.clusters, "cluster"));
        }
        parts.push(plural(self.cores, "core"));
        parts.push(plural(self.threads, "thread"));
        f.write_str(&parts.join(" × "))
    }
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// One `<feature>` of a `<cpu>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRequest {
    /// The feature's bit (always one Xen names).
    pub bit: FeatureBit,
    /// The name as written in the XML (an alias, or another case, maybe).
    pub written: String,
    /// What is asked.
    pub policy: FeaturePolicy,
    /// The line of the element, 1-based.
    pub line: u32,
    /// The column of the element, 1-based, in characters.
    pub column: u32,
}

impl FeatureRequest {
    /// Xen's name of the feature.
    pub fn name(&self) -> &'static str {
        self.bit.name().unwrap_or("")
    }

    /// The name libxl's `cpuid=` needs: Xen's name, except `clfsh` for `clflush` (which
    /// libxl reads as the CLFLUSH line size).
    pub fn cpuid_name(&self) -> &'static str {
        cpuid_name(self.name())
    }
}

/// The name libxl's `cpuid=` needs for a feature of Xen's name `name`.
pub fn cpuid_name(name: &'static str) -> &'static str {
    if name == "clflush" {
        "clfsh"
    } else {
        name
    }
}

/// A guest's `<cpu>`: its mode, model, topology and feature requests, and the domain's
/// `<vcpu>` count when the XML has one.
///
/// ```
/// use xenvcpu::cpu::{CpuFeatures, GuestCpu};
/// let cpu = GuestCpu::from_xml(
///     "<cpu mode='host-passthrough'>
///        <feature policy='require' name='avx2'/>
///        <feature name='rtm' mode='set' value='off'/>
///        <feature policy='optional' name='sse4.1'/>
///      </cpu>",
/// )?;
/// assert_eq!(cpu.cpuid_string(), "host,avx2=1,rtm=0");
/// let host: CpuFeatures = "avx2 rtm".parse()?;
/// assert!(cpu.check(&host, &host).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuestCpu {
    /// `<cpu mode>`, if given.
    pub mode: Option<CpuMode>,
    /// The `<model>` text, if given.
    pub model: Option<String>,
    /// The `<topology>`, if given.
    pub topology: Option<Topology>,
    /// The `<feature>` elements, in document order.
    pub features: Vec<FeatureRequest>,
    /// The domain's maximum vCPU count, from `<vcpu>`, when the XML has it.
    pub max_vcpus: Option<u32>,
}

impl GuestCpu {
    /// Reads the `<cpu>` of a domain XML (`<domain>` root; no `<cpu>` means nothing is
    /// asked), of a `<cpu>` element, or of a fragment of top-level elements (then one of
    /// them must be `<cpu>`). `<vcpu>` is read too when present, and then the topology
    /// must match it ([`Topology::check`]).
    ///
    /// Features may be written in libvirt's form, `<feature policy='require|force|
    /// disable|forbid|optional' name='N'/>` (no `policy` means `require`, as in
    /// libvirt), or the RFC's, `<feature name='N' mode='check|set' value='on|off'/>`.
    pub fn from_xml(xml: &str) -> Result<GuestCpu, GuestCpuError> {
        let mut wrapped = String::new();
        let (doc, shift) = crate::xml::parse(xml, &mut wrapped).map_err(|e| GuestCpuError::Xml {
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let at = Positions { doc: &doc, shift };
        let root = doc.root_element();
        let top: Vec<Node<'_, '_>> = if is(root, "cpu") || is(root, "vcpu") {
            vec![root]
        } else {
            root.children().filter(Node::is_element).collect()
        };
        let cpu = single(&top, "cpu", &at)?;
        let vcpu = single(&top, "vcpu", &at)?;
        let mut out = GuestCpu::default();
        if let Some(vcpu) = vcpu {
            let text: String = vcpu.children().filter_map(|n| n.text()).collect();
            let n = parse_count(&text).ok_or_else(|| at.invalid(vcpu, "<vcpu>", "", text.trim(), "a count from 1"))?;
            out.max_vcpus = Some(n);
        }
        let Some(cpu) = cpu else {
            return if is(root, "domain") { Ok(out) } else { Err(GuestCpuError::NoCpu) };
        };
        read_cpu(cpu, &at, &mut out)?;
        if let (Some(topology), Some(max)) = (out.topology, out.max_vcpus) {
            topology.check(max)?;
        }
        Ok(out)
    }

    /// Checks the `require` and `forbid` requests against a host: `host` is the host's
    /// featureset (Xen's `host` featureset, index 1) and `guest_max` the maximum the
    /// domain's type may have (`hvm_max`, index 5, or `pv_max`, index 4).
    ///
    /// A required feature is refused when the host lacks it, and when the guest type's
    /// maximum lacks it (Xen would silently drop it); a forbidden one when the host has
    /// it. The error names every feature at fault under each rule, not just the first.
    /// `force`, `disable` and `optional` are never refused (Xen clamps a forced feature
    /// silently; read the domain's policy back to see it).
    pub fn check(&self, host: &CpuFeatures, guest_max: &CpuFeatures) -> Result<(), CpuCheckError> {
        let mut refusals = Vec::new();
        let mut refuse = |rule, pick: &dyn Fn(&FeatureRequest) -> bool| {
            let features: Vec<&'static str> = self.features.iter().filter(|r| pick(r)).map(|r| r.name()).collect();
            if !features.is_empty() {
                refusals.push(Refusal { rule, features });
            }
        };
        let require = |r: &FeatureRequest| r.policy == FeaturePolicy::Require;
        refuse(CheckRule::RequiredMissingOnHost, &|r| require(r) && !host.contains(r.bit));
        refuse(CheckRule::RequiredNotOffered, &|r| require(r) && !guest_max.contains(r.bit));
        refuse(CheckRule::ForbiddenOnHost, &|r| r.policy == FeaturePolicy::Forbid && host.contains(r.bit));
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(CpuCheckError { refusals })
        }
    }

    /// libxl's `cpuid=` tokens, the form `libxl_cpuid_parse_config` takes one at a time:
    /// `name=1` for `force`/`require`, `name=0` for `disable`/`forbid`, nothing for
    /// `optional`, in document order, with Xen's names (libxl 4.17.2+; `clfsh` for
    /// CLFLUSH).
    ///
    /// `vmx` and `svm` are written like any feature; libvirt's libxl driver instead turns
    /// them into `nestedhvm`, and Xen hides them from a guest without nested virt.
    pub fn cpuid_tokens(&self) -> Vec<String> {
        self.features
            .iter()
            .filter_map(|r| r.policy.cpuid_value().map(|on| format!("{}={}", r.cpuid_name(), u8::from(on))))
            .collect()
    }

    /// xl.cfg's `cpuid=` value: `host` then the [`cpuid_tokens`](Self::cpuid_tokens),
    /// comma-separated, e.g. `host,avx2=1,rtm=0` (just `host` when nothing is asked).
    pub fn cpuid_string(&self) -> String {
        std::iter::once("host".to_owned()).chain(self.cpuid_tokens()).collect::<Vec<_>>().join(",")
    }

    /// Checks the topology (if any) against a maximum vCPU count, as libvirt does.
    pub fn check_topology(&self, max_vcpus: u32) -> Result<(), GuestCpuError> {
        self.topology.map_or(Ok(()), |t| t.check(max_vcpus))
    }

    /// The features requested with `policy`.
    pub fn with_policy(&self, policy: FeaturePolicy) -> CpuFeatures {
        self.features.iter().filter(|r| r.policy == policy).map(|r| r.bit).collect()
    }

    /// The request for a feature, if the `<cpu>` has one.
    pub fn request(&self, bit: impl Into<FeatureBit>) -> Option<&FeatureRequest> {
        let bit = bit.into();
        self.features.iter().find(|r| r.bit == bit)
    }
}

/// Which rule a [`Refusal`] broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckRule {
    /// `require` (RFC `check`/`on`), and the host lacks the feature.
    RequiredMissingOnHost,
    /// `require`, and the guest type's maximum featureset lacks it: Xen would drop it.
    RequiredNotOffered,
    /// `forbid` (RFC `check`/`off`), and the host has the feature.
    ForbiddenOnHost,
}

impl fmt::Display for CheckRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckRule::RequiredMissingOnHost => "required but missing on the host",
            CheckRule::RequiredNotOffered => "required but not offered to this type of guest (its maximum featureset)",
            CheckRule::ForbiddenOnHost => "forbidden but present on the host",
        })
    }
}

/// The features refused under one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule.
    pub rule: CheckRule,
    /// Every feature refused by it, by Xen's name, in document order.
    pub features: Vec<&'static str>,
}

/// Why a guest's `<cpu>` cannot run on a host: one [`Refusal`] per rule broken, in the
/// order require-host, require-maximum, forbid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the guest's <cpu> does not fit this host: {}", describe(.refusals))]
pub struct CpuCheckError {
    /// The refusals, at least one.
    pub refusals: Vec<Refusal>,
}

impl CpuCheckError {
    /// The features refused under `rule` (empty if none).
    pub fn features(&self, rule: CheckRule) -> &[&'static str] {
        self.refusals.iter().find(|r| r.rule == rule).map_or(&[], |r| &r.features)
    }
}

fn describe(refusals: &[Refusal]) -> String {
    refusals.iter().map(|r| format!("{}: {}", r.rule, r.features.join(", "))).collect::<Vec<_>>().join("; ")
}

/// A `<cpu>` that cannot be read, or whose topology does not fit the vCPU count.
///
/// Positions are 1-based lines and columns in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestCpuError {
    /// The text is not well-formed XML.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Xml {
        /// The line of the error.
        line: u32,
        /// The column of the error.
        column: u32,
        /// What the XML parser found wrong.
        message: String,
    },
    /// A fragment without a `<cpu>` element.
    #[error("no <cpu> element: expected a domain XML, a <cpu> element, or a fragment with one")]
    NoCpu,
    /// An element that may appear once appears again.
    #[error("line {line}, column {column}: a second {element} element: at most one is allowed")]
    DuplicateElement {
        /// The element, e.g. `<topology>`.
        element: String,
        /// The line of the second one.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// An attribute the element does not have (a typo such as `polcy`).
    #[error("line {line}, column {column}: {element} has no attribute {attribute:?} (it takes {expected})")]
    UnknownAttribute {
        /// The element.
        element: String,
        /// The attribute as written.
        attribute: String,
        /// The attributes it takes.
        expected: &'static str,
        /// The line of the element.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// An attribute (or, for `<vcpu>`, text) with a value it cannot have.
    #[error("line {line}, column {column}: {element}{} {value:?} is invalid: expected {expected}", attr_phrase(.attribute))]
    InvalidValue {
        /// The element.
        element: String,
        /// The attribute, `""` for the element's text.
        attribute: &'static str,
        /// The value as written.
        value: String,
        /// What would be accepted.
        expected: &'static str,
        /// The line of the element.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// An element lacks an attribute it needs.
    #[error("line {line}, column {column}: {element} has no {attribute} attribute, which it requires")]
    MissingAttribute {
        /// The element.
        element: String,
        /// The missing attribute.
        attribute: &'static str,
        /// The line of the element.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// A `<feature>` with both libvirt's `policy` and the RFC's `mode`/`value`.
    #[error(
        "line {line}, column {column}: <feature name={name:?}> has both policy= and mode=/value=: \
         use one form"
    )]
    ConflictingAttributes {
        /// The feature as written.
        name: String,
        /// The line of the element.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// A `<feature name>` that is not a feature Xen names.
    #[error("line {line}, column {column}: {source}")]
    Feature {
        /// Why the name is no feature (with the nearest names, when unknown).
        source: FeatureNameError,
        /// The line of the element.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// The same feature twice (maybe under two names, such as `sse4.1` and `sse4_1`).
    #[error(
        "line {line}, column {column}: feature {name} is already given at line {first_line}, \
         column {first_column}: each feature may appear once"
    )]
    DuplicateFeature {
        /// Xen's name of the feature.
        name: &'static str,
        /// The line of the first.
        first_line: u32,
        /// The column of the first.
        first_column: u32,
        /// The line of the second.
        line: u32,
        /// The column of the second.
        column: u32,
    },
    /// The topology does not describe the maximum vCPU count.
    #[error(
        "CPU topology doesn't match maximum vcpu count: <topology> describes {described} vCPUs \
         ({topology}) but the domain has <vcpu>{max_vcpus}</vcpu>; libvirt requires them equal"
    )]
    TopologyMismatch {
        /// The topology.
        topology: Topology,
        /// How many vCPUs it describes.
        described: u64,
        /// The domain's maximum vCPU count.
        max_vcpus: u32,
    },
}

fn attr_phrase(attribute: &str) -> String {
    if attribute.is_empty() {
        String::new()
    } else {
        format!(" {attribute}=")
    }
}

/// Positions of nodes in the caller's text (a wrapped fragment's first line is `shift`
/// characters longer).
struct Positions<'a, 'input> {
    doc: &'a Document<'input>,
    shift: usize,
}

impl Positions<'_, '_> {
    fn of(&self, node: Node<'_, '_>) -> (u32, u32) {
        let pos = self.doc.text_pos_at(node.range().start);
        let col = if pos.row == 1 { (pos.col as usize).saturating_sub(self.shift).max(1) as u32 } else { pos.col };
        (pos.row, col)
    }

    fn invalid(
        &self,
        node: Node<'_, '_>,
        element: &str,
        attribute: &'static str,
        value: &str,
        expected: &'static str,
    ) -> GuestCpuError {
        let (line, column) = self.of(node);
        GuestCpuError::InvalidValue {
            element: element.to_owned(),
            attribute,
            value: value.to_owned(),
            expected,
            line,
            column,
        }
    }

    fn missing(&self, node: Node<'_, '_>, element: &str, attribute: &'static str) -> GuestCpuError {
        let (line, column) = self.of(node);
        GuestCpuError::MissingAttribute { element: element.to_owned(), attribute, line, column }
    }
}

/// Whether `node` is the element `name` in no namespace.
fn is(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace().is_none()
}

/// The one element `name` among `nodes`, if any; a second is an error.
fn single<'a, 'input>(
    nodes: &[Node<'a, 'input>],
    name: &str,
    at: &Positions<'_, '_>,
) -> Result<Option<Node<'a, 'input>>, GuestCpuError> {
    let mut found = nodes.iter().copied().filter(|n| is(*n, name));
    let first = found.next();
    if let Some(second) = found.next() {
        let (line, column) = at.of(second);
        return Err(GuestCpuError::DuplicateElement { element: format!("<{name}>"), line, column });
    }
    Ok(first)
}

fn check_value(
    node: Node<'_, '_>,
    at: &Positions<'_, '_>,
    attribute: &'static str,
    allowed: &[&str],
    expected: &'static str,
) -> Result<(), GuestCpuError> {
    match node.attribute(attribute) {
        Some(v) if !allowed.contains(&v) => Err(at.invalid(node, "<cpu>", attribute, v, expected)),
        _ => Ok(()),
    }
}

fn read_cpu(cpu: Node<'_, '_>, at: &Positions<'_, '_>, out: &mut GuestCpu) -> Result<(), GuestCpuError> {
    out.mode = match cpu.attribute("mode") {
        None => None,
        Some("custom") => Some(CpuMode::Custom),
        Some("host-model") => Some(CpuMode::HostModel),
        Some("host-passthrough") => Some(CpuMode::HostPassthrough),
        Some("maximum") => Some(CpuMode::Maximum),
        Some(v) => return Err(at.invalid(cpu, "<cpu>", "mode", v, "custom, host-model, host-passthrough or maximum")),
    };
    check_value(cpu, at, "match", &["minimum", "exact", "strict"], "minimum, exact or strict")?;
    check_value(cpu, at, "check", &["none", "partial", "full"], "none, partial or full")?;
    check_value(cpu, at, "migratable", &["on", "off"], "on or off")?;

    let children: Vec<Node<'_, '_>> = cpu.children().filter(Node::is_element).collect();
    if let Some(model) = single(&children, "model", at)? {
        let text: String = model.children().filter_map(|n| n.text()).collect();
        let text = text.trim();
        out.model = (!text.is_empty()).then(|| text.to_owned());
    }
    if let Some(topology) = single(&children, "topology", at)? {
        out.topology = Some(read_topology(topology, at)?);
    }
    for node in children.into_iter().filter(|n| is(*n, "feature")) {
        let request = read_feature(node, at)?;
        if let Some(first) = out.features.iter().find(|r| r.bit == request.bit) {
            return Err(GuestCpuError::DuplicateFeature {
                name: request.name(),
                first_line: first.line,
                first_column: first.column,
                line: request.line,
                column: request.column,
            });
        }
        out.features.push(request);
    }
    Ok(())
}

const TOPOLOGY_ATTRIBUTES: &str = "sockets, dies, clusters, cores and threads";

fn read_topology(node: Node<'_, '_>, at: &Positions<'_, '_>) -> Result<Topology, GuestCpuError> {
    for attr in node.attributes() {
        if !["sockets", "dies", "clusters", "cores", "threads"].contains(&attr.name()) || attr.namespace().is_some() {
            let (line, column) = at.of(node);
            return Err(GuestCpuError::UnknownAttribute {
                element: "<topology>".to_owned(),
                attribute: attr.name().to_owned(),
                expected: TOPOLOGY_ATTRIBUTES,
                line,
                column,
            });
        }
    }
    let get = |name: &'static str, default: Option<u32>| -> Result<u32, GuestCpuError> {
        match node.attribute(name) {
            None => default.ok_or_else(|| at.missing(node, "<topology>", name)),
            Some(v) => parse_count(v).ok_or_else(|| at.invalid(node, "<topology>", name, v, "a whole number from 1")),
        }
    };
    Ok(Topology {
        sockets: get("sockets", None)?,
        dies: get("dies", Some(1))?,
        clusters: get("clusters", Some(1))?,
        cores: get("cores", None)?,
        threads: get("threads", None)?,
    })
}

fn read_feature(node: Node<'_, '_>, at: &Positions<'_, '_>) -> Result<FeatureRequest, GuestCpuError> {
    let (line, column) = at.of(node);
    for attr in node.attributes() {
        if !["name", "policy", "mode", "value"].contains(&attr.name()) || attr.namespace().is_some() {
            return Err(GuestCpuError::UnknownAttribute {
                element: "<feature>".to_owned(),
                attribute: attr.name().to_owned(),
                expected: "name, and policy (libvirt) or mode and value (RFC)",
                line,
                column,
            });
        }
    }
    let written = node.attribute("name").ok_or_else(|| at.missing(node, "<feature>", "name"))?;
    let element = format!("<feature name={written:?}>");
    let policy = match (node.attribute("policy"), node.attribute("mode"), node.attribute("value")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(GuestCpuError::ConflictingAttributes { name: written.to_owned(), line, column })
        }
        (Some(p), None, None) => FeaturePolicy::from_libvirt(p)
            .ok_or_else(|| at.invalid(node, &element, "policy", p, "force, require, optional, disable or forbid"))?,
        (None, None, None) => FeaturePolicy::Require,
        (None, Some(_), None) => return Err(at.missing(node, &element, "value")),
        (None, None, Some(_)) => return Err(at.missing(node, &element, "mode")),
        (None, Some(mode), Some(value)) => {
            let on = match value {
                "on" => true,
                "off" => false,
                v => return Err(at.invalid(node, &element, "value", v, "on or off")),
            };
            match (mode, on) {
                ("check", true) => FeaturePolicy::Require,
                ("check", false) => FeaturePolicy::Forbid,
                ("set", true) => FeaturePolicy::Force,
                ("set", false) => FeaturePolicy::Disable,
                (m, _) => return Err(at.invalid(node, &element, "mode", m, "check or set")),
            }
        }
    };
    let bit = FeatureBit::parse(written).map_err(|source| GuestCpuError::Feature { source, line, column })?;
    if bit.name().is_none() {
        // `<word:bit>` of a bit Xen does not name: libxl could not be told about it.
        let source = FeatureNameError::Unknown { name: written.trim().to_owned(), suggestions: Vec::new() };
        return Err(GuestCpuError::Feature { source, line, column });
    }
    Ok(FeatureRequest { bit, written: written.to_owned(), policy, line, column })
}

/// A count: a decimal number from 1, whitespace around it allowed.
fn parse_count(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n > 0)
}
