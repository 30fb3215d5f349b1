//! A guest's `<cpu>`: both feature syntaxes (libvirt's policy and the RFC's mode/value),
//! every refusal of `check` naming all its features, the exact `cpuid=` output, the
//! topology rule, and the errors with their positions.

use xenvcpu::cpu::{
    CheckRule, CpuFeatures, CpuMode, FeatureBit, FeatureNameError, FeaturePolicy, GuestCpu, GuestCpuError, Topology,
};

fn cpu(xml: &str) -> GuestCpu {
    GuestCpu::from_xml(xml).unwrap_or_else(|e| panic!("{e}"))
}

fn err(xml: &str) -> GuestCpuError {
    GuestCpu::from_xml(xml).expect_err("expected an error")
}

fn set(names: &str) -> CpuFeatures {
    names.parse().unwrap()
}

const DOMAIN: &str = r#"<domain type='xen'>
  <name>guest</name>
  <vcpu placement='static'>8</vcpu>
  <cpu mode='host-passthrough' check='none' migratable='on'>
    <model fallback='allow'>Skylake-Server</model>
    <topology sockets='2' dies='1' cores='2' threads='2'/>
    <feature policy='require' name='avx2'/>
    <feature policy='force' name='sse4.1'/>
    <feature policy='disable' name='rtm'/>
    <feature policy='forbid' name='hle'/>
    <feature policy='optional' name='pni'/>
    <feature name='clflush'/>
  </cpu>
</domain>"#;

#[test]
fn libvirt_form_in_a_domain() {
    let c = cpu(DOMAIN);
    assert_eq!(c.mode, Some(CpuMode::HostPassthrough));
    assert_eq!(c.model.as_deref(), Some("Skylake-Server"));
    assert_eq!(c.max_vcpus, Some(8));
    assert_eq!(c.topology, Some(Topology { sockets: 2, dies: 1, clusters: 1, cores: 2, threads: 2 }));
    let got: Vec<(&str, &str, FeaturePolicy)> =
        c.features.iter().map(|r| (r.name(), r.written.as_str(), r.policy)).collect();
    assert_eq!(
        got,
        [
            ("avx2", "avx2", FeaturePolicy::Require),
            ("sse4-1", "sse4.1", FeaturePolicy::Force),
            ("rtm", "rtm", FeaturePolicy::Disable),
            ("hle", "hle", FeaturePolicy::Forbid),
            ("sse3", "pni", FeaturePolicy::Optional),
            ("clflush", "clflush", FeaturePolicy::Require), // no policy: require, as libvirt
        ]
    );
    assert_eq!((c.features[0].line, c.features[0].column), (7, 5));
    assert_eq!(c.request(FeatureBit::parse("sse3").unwrap()).unwrap().written, "pni");
    assert_eq!(c.with_policy(FeaturePolicy::Require), set("avx2 clflush"));
}

#[test]
fn cpuid_string_exact() {
    let c = cpu(DOMAIN);
    // Optional gives nothing; CLFLUSH is written clfsh (libxl's clflush is the line size).
    assert_eq!(c.cpuid_string(), "host,avx2=1,sse4-1=1,rtm=0,hle=0,clfsh=1");
    assert_eq!(c.cpuid_tokens(), ["avx2=1", "sse4-1=1", "rtm=0", "hle=0", "clfsh=1"]);
    assert_eq!(cpu("<cpu/>").cpuid_string(), "host");
    assert!(cpu("<cpu/>").cpuid_tokens().is_empty());
    let c = cpu("<cpu><feature name='clfsh' policy='disable'/><feature name='LAHF_LM' policy='force'/></cpu>");
    assert_eq!(c.cpuid_string(), "host,clfsh=0,lahf-lm=1");
}

#[test]
fn rfc_form() {
    let c = cpu(r#"<cpu>
        <feature name="avx2" mode="check" value="on"/>
        <feature name="rtm" mode="check" value="off"/>
        <feature name="sse4_2" mode="set" value="on"/>
        <feature name="hle" mode="set" value="off"/>
    </cpu>"#);
    let policies: Vec<_> = c.features.iter().map(|r| r.policy).collect();
    assert_eq!(policies, [FeaturePolicy::Require, FeaturePolicy::Forbid, FeaturePolicy::Force, FeaturePolicy::Disable]);
    assert_eq!(c.cpuid_string(), "host,avx2=1,rtm=0,sse4-2=1,hle=0");
}

#[test]
fn both_forms_mix_in_one_cpu() {
    let c = cpu("<cpu><feature name='avx2' mode='check' value='on'/><feature policy='forbid' name='rtm'/></cpu>");
    assert_eq!(c.cpuid_tokens(), ["avx2=1", "rtm=0"]);
}

#[test]
fn check_names_every_feature_under_every_rule() {
    let c = cpu(r#"<cpu>
        <feature policy='require' name='avx2'/>
        <feature policy='require' name='avx512f'/>
        <feature policy='require' name='vmx'/>
        <feature policy='require' name='amx-tile'/>
        <feature policy='forbid' name='rtm'/>
        <feature policy='forbid' name='hle'/>
        <feature policy='forbid' name='mpx'/>
        <feature policy='force' name='sha'/>
        <feature policy='disable' name='sse2'/>
    </cpu>"#);
    let host = set("avx2 vmx rtm hle sse2");
    let guest_max = set("avx2 avx512f rtm hle sse2 sha");
    let e = c.check(&host, &guest_max).unwrap_err();
    assert_eq!(e.refusals.len(), 3);
    assert_eq!(e.features(CheckRule::RequiredMissingOnHost), ["avx512f", "amx-tile"]);
    assert_eq!(e.features(CheckRule::RequiredNotOffered), ["vmx", "amx-tile"]);
    assert_eq!(e.features(CheckRule::ForbiddenOnHost), ["rtm", "hle"]);
    assert_eq!(
        e.to_string(),
        "the guest's <cpu> does not fit this host: required but missing on the host: avx512f, amx-tile; \
         required but not offered to this type of guest (its maximum featureset): vmx, amx-tile; \
         forbidden but present on the host: rtm, hle"
    );
    // force and disable are never refused.
    let ok = cpu("<cpu><feature policy='force' name='avx512f'/><feature policy='disable' name='rtm'/></cpu>");
    assert!(ok.check(&CpuFeatures::new(), &CpuFeatures::new()).is_ok());
}

#[test]
fn check_single_rules() {
    let c = cpu("<cpu><feature name='rtm' mode='check' value='off'/></cpu>");
    let e = c.check(&set("rtm"), &set("rtm")).unwrap_err();
    assert_eq!(e.refusals.len(), 1);
    assert_eq!(e.refusals[0].rule, CheckRule::ForbiddenOnHost);
    assert!(c.check(&set("hle"), &set("rtm")).is_ok());
    let c = cpu("<cpu><feature name='avx2' mode='check' value='on'/></cpu>");
    assert_eq!(c.check(&set("avx2"), &set("fpu")).unwrap_err().features(CheckRule::RequiredNotOffered), ["avx2"]);
    assert!(c.check(&set("avx2"), &set("avx2")).is_ok());
    // Words beyond a short featureset count as absent.
    let c = cpu("<cpu><feature policy='require' name='tsa-l1-no'/></cpu>");
    let short = CpuFeatures::from_words(vec![u32::MAX; 14]);
    assert_eq!(c.check(&short, &short).unwrap_err().refusals.len(), 2);
}

#[test]
fn topology_rule() {
    let c = cpu("<vcpu>12</vcpu><cpu><topology sockets='1' dies='2' clusters='3' cores='2' threads='1'/></cpu>");
    assert_eq!(c.topology.unwrap().vcpus(), 12);
    assert!(c.check_topology(12).is_ok());
    let e = c.check_topology(8).unwrap_err();
    assert_eq!(e, GuestCpuError::TopologyMismatch { topology: c.topology.unwrap(), described: 12, max_vcpus: 8 });
    assert_eq!(
        e.to_string(),
        "CPU topology doesn't match maximum vcpu count: <topology> describes 12 vCPUs (1 socket × 2 dies × \
         3 clusters × 2 cores × 1 thread) but the domain has <vcpu>8</vcpu>; libvirt requires them equal"
    );
    // Checked by from_xml when <vcpu> is there.
    let e = err("<vcpu>6</vcpu><cpu><topology sockets='2' cores='2' threads='2'/></cpu>");
    assert!(matches!(e, GuestCpuError::TopologyMismatch { described: 8, max_vcpus: 6, .. }), "{e:?}");
    // Not without it.
    assert!(GuestCpu::from_xml("<cpu><topology sockets='2' cores='2' threads='2'/></cpu>").is_ok());
}

#[test]
fn topology_attributes() {
    let e = err("<cpu><topology sockets='2' cores='2'/></cpu>");
    assert!(matches!(e, GuestCpuError::MissingAttribute { attribute: "threads", .. }), "{e:?}");
    let e = err("<cpu><topology sockets='0' cores='2' threads='1'/></cpu>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "sockets", ref value, .. } if value == "0"), "{e:?}");
    let e = err("<cpu><topology sockets='2' cores='x' threads='1'/></cpu>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "cores", .. }), "{e:?}");
    let e = err("<cpu>\n  <topology sockets='2' cores='2' threads='1' modules='2'/></cpu>");
    assert_eq!(
        e,
        GuestCpuError::UnknownAttribute {
            element: "<topology>".into(),
            attribute: "modules".into(),
            expected: "sockets, dies, clusters, cores and threads",
            line: 2,
            column: 3
        }
    );
}

#[test]
fn unknown_feature_names_the_nearest_and_the_place() {
    let e = err("<cpu>\n  <feature policy='require' name='avx5l2f'/>\n</cpu>");
    let GuestCpuError::Feature { source: FeatureNameError::Unknown { name, suggestions }, line, column } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((name.as_str(), *line, *column), ("avx5l2f", 2, 3));
    assert_eq!(suggestions[0], "avx512f");
    assert!(e.to_string().starts_with("line 2, column 3: unknown CPU feature \"avx5l2f\": did you mean"), "{e}");

    let e = err("<cpu><feature name='maxleaf' policy='force'/></cpu>");
    assert!(matches!(e, GuestCpuError::Feature { source: FeatureNameError::NotAFeature { .. }, .. }), "{e:?}");
    // A raw bit Xen does not name cannot be given to libxl.
    let e = err("<cpu><feature name='&lt;0:10&gt;' policy='force'/></cpu>");
    assert!(matches!(e, GuestCpuError::Feature { .. }), "{e:?}");
}

#[test]
fn duplicate_features_even_under_two_names() {
    let e = err("<cpu>\n<feature name='sse4.1' policy='require'/>\n<feature name='SSE4_1' policy='force'/></cpu>");
    assert_eq!(
        e,
        GuestCpuError::DuplicateFeature { name: "sse4-1", first_line: 2, first_column: 1, line: 3, column: 1 }
    );
    assert!(e.to_string().contains("feature sse4-1 is already given at line 2, column 1"), "{e}");
}

#[test]
fn attribute_errors() {
    let e = err("<cpu><feature policy='requires' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "policy", ref value, .. } if value == "requires"));
    assert!(e.to_string().contains("expected force, require, optional, disable or forbid"), "{e}");
    let e = err("<cpu><feature mode='sett' value='on' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "mode", .. }), "{e:?}");
    let e = err("<cpu><feature mode='set' value='yes' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "value", .. }), "{e:?}");
    let e = err("<cpu><feature mode='set' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::MissingAttribute { attribute: "value", .. }), "{e:?}");
    let e = err("<cpu><feature value='on' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::MissingAttribute { attribute: "mode", .. }), "{e:?}");
    let e = err("<cpu><feature policy='force'/></cpu>");
    assert!(matches!(e, GuestCpuError::MissingAttribute { attribute: "name", .. }), "{e:?}");
    let e = err("<cpu><feature policy='force' mode='set' value='on' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::ConflictingAttributes { .. }), "{e:?}");
    let e = err("<cpu><feature polcy='force' name='avx2'/></cpu>");
    assert!(matches!(e, GuestCpuError::UnknownAttribute { ref attribute, .. } if attribute == "polcy"), "{e:?}");
    let e = err("<cpu mode='passthrough'/>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "mode", .. }), "{e:?}");
    let e = err("<cpu match='loose'/>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "match", .. }), "{e:?}");
    let e = err("<cpu check='some'/>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "check", .. }), "{e:?}");
    let e = err("<vcpu>zero</vcpu><cpu/>");
    assert!(matches!(e, GuestCpuError::InvalidValue { attribute: "", .. }), "{e:?}");
}

#[test]
fn structure_errors() {
    assert_eq!(err("<vcpu>2</vcpu>"), GuestCpuError::NoCpu);
    assert_eq!(err("<vcpu>2</vcpu><name>x</name>"), GuestCpuError::NoCpu);
    let e = err("<cpu/>\n<cpu/>");
    assert_eq!(e, GuestCpuError::DuplicateElement { element: "<cpu>".into(), line: 2, column: 1 });
    let e =
        err("<cpu><topology sockets='1' cores='1' threads='1'/><topology sockets='1' cores='1' threads='1'/></cpu>");
    assert!(matches!(e, GuestCpuError::DuplicateElement { ref element, .. } if element == "<topology>"), "{e:?}");
    // A domain without <cpu> asks for nothing.
    let c = cpu("<domain><vcpu>2</vcpu></domain>");
    assert_eq!((c.features.len(), c.max_vcpus, c.cpuid_string().as_str()), (0, Some(2), "host"));
}

#[test]
fn malformed_xml_has_a_position() {
    let e = err("<cpu>\n  <feature name='avx2' policy='force'>\n</cpu>");
    let GuestCpuError::Xml { line, .. } = e else { panic!("{e:?}") };
    assert_eq!(line, 3);
    // In a wrapped fragment, first-line columns are the caller's.
    let e = err("<vcpu>2</vcpu><cpu><feature name=avx2/></cpu>");
    let GuestCpuError::Xml { line, column, ref message } = e else { panic!("{e:?}") };
    assert_eq!((line, column), (1, 34), "{message}");
    let e = err("<cpu>");
    assert!(matches!(e, GuestCpuError::Xml { line: 1, column: 6, .. }), "{e:?}");
}
