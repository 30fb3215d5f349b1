//! `xenvcpu cpu ...`: a guest's `<cpu>` turned into libxl's `cpuid=`, and CPU policies
//! compared for migration.

use serde_json::json;

use super::CliResult;
use crate::cpu::{compare, CpuFeatures, CpuPolicy, FeaturePolicy, GuestCpu};
use crate::{Domain, Error, FeaturesetKind, Host};

fn read(file: &str) -> CliResult<String> {
    Ok(std::fs::read_to_string(file).map_err(|e| Error::InvalidArgument(format!("{file}: cannot read it: {e}")))?)
}

/// A policy file written by `xenvcpu cpu export`.
pub(super) fn read_policy(file: &str) -> CliResult<CpuPolicy> {
    let text = read(file)?;
    Ok(CpuPolicy::from_json(&text).map_err(|error| Error::CpuPolicyFile { file: file.to_owned(), error })?)
}

/// A domain XML's `<cpu>` (its `<topology>` checked against `<vcpu>` when both are there).
pub(super) fn read_guest_cpu(file: &str) -> CliResult<GuestCpu> {
    Ok(GuestCpu::from_xml(&read(file)?)?)
}

/// `xenvcpu cpu cpuid FILE.xml [--json]`.
pub(super) fn cpuid(file: &str, json: bool) -> CliResult {
    let cpu = read_guest_cpu(file)?;
    if json {
        let value = json!({"cpuid": cpu.cpuid_string(), "libxl": cpu.cpuid_tokens()});
        println!("{value}");
    } else {
        println!("cpuid = \"{}\"", cpu.cpuid_string());
    }
    Ok(())
}

/// `xenvcpu cpu compare GUEST.json HOST.json [--json]`: exit 0 when compatible, 1 when not.
pub(super) fn compare_files(guest: &str, host: &str, json: bool) -> CliResult {
    let (guest_policy, host_policy) = (read_policy(guest)?, read_policy(host)?);
    let result = compare(&guest_policy, &host_policy);
    if json {
        let names = |set: &crate::cpu::CpuFeatures| set.iter().map(|b| b.to_string()).collect::<Vec<_>>();
        let value = json!({
            "compatible": result.is_compatible(),
            "blockers": result.blockers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "blocking_features": names(&result.blocking_features()),
            "accumulated": names(&result.accumulated),
            "special": names(&result.special),
            "hidden_accumulating": names(&result.hidden_accumulating),
        });
        println!("{value}");
    } else {
        println!("{result}");
    }
    if result.is_compatible() {
        Ok(())
    } else {
        let reasons: Vec<String> = result.blockers.iter().map(ToString::to_string).collect();
        Err(Error::CpuIncompatible(format!(
            "a domain with {guest}'s CPU policy cannot run on a host with {host}'s: {}",
            reasons.join("; ")
        ))
        .into())
    }
}

/// The guest types `cpu check` and `cpu export` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuestType {
    /// A PV guest: its maximum is Xen's `pv_max` featureset.
    Pv,
    /// An HVM (or PVH) guest: `hvm_max`.
    Hvm,
}

impl GuestType {
    fn max(self) -> FeaturesetKind {
        match self {
            GuestType::Pv => FeaturesetKind::PvMax,
            GuestType::Hvm => FeaturesetKind::HvmMax,
        }
    }

    fn name(self) -> &'static str {
        match self {
            GuestType::Pv => "PV",
            GuestType::Hvm => "HVM",
        }
    }
}

fn featureset(host: &Host, kind: FeaturesetKind) -> CliResult<CpuFeatures> {
    Ok(CpuFeatures::from_words(host.featureset(kind)?))
}

/// `xenvcpu cpu check FILE.xml [--type pv|hvm]`: the `<cpu>` against this host's
/// featureset and the guest type's maximum; exit 1 naming every feature at fault.
pub(super) fn check(host: &Host, file: &str, guest: GuestType) -> CliResult {
    let cpu = read_guest_cpu(file)?;
    let (have, max) = (featureset(host, FeaturesetKind::Host)?, featureset(host, guest.max())?);
    cpu.check(&have, &max)?;
    println!(
        "{file}: the <cpu> fits this host for a {} guest ({} features requested; cpuid = \"{}\")",
        guest.name(),
        cpu.features.len(),
        cpu.cpuid_string()
    );
    Ok(())
}

/// `xenvcpu cpu check FILE.xml --domain D`: each requested feature against the running
/// domain's policy: as requested, dropped by Xen, or present though forbidden (or
/// disabled); exit 1 unless all are as requested.
pub(super) fn check_domain(dom: &Domain, file: &str, json: bool) -> CliResult {
    let cpu = read_guest_cpu(file)?;
    let policy = dom.cpu_policy()?.to_portable();
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for request in &cpu.features {
        let present = policy.features.contains(request.bit);
        let verdict = match (request.policy.cpuid_value(), present) {
            (None, _) => "optional",
            (Some(true), true) | (Some(false), false) => "as requested",
            (Some(true), false) => "dropped by Xen",
            (Some(false), true) if request.policy == FeaturePolicy::Forbid => "present though forbidden",
            (Some(false), true) => "present though disabled",
        };
        if !matches!(verdict, "as requested" | "optional") {
            wrong.push(format!("{} ({verdict})", request.name()));
        }
        rows.push((request.name(), request.policy.as_str(), present, verdict));
    }
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(name, policy, present, verdict)| {
                json!({"feature": name, "policy": policy, "present": present, "verdict": verdict})
            })
            .collect();
        println!("{}", json!({"domid": dom.id().get(), "features": items, "ok": wrong.is_empty()}));
    } else {
        println!("{:<20} {:<9} {:<8} verdict", "feature", "policy", "present");
        for (name, policy, present, verdict) in &rows {
            println!("{name:<20} {policy:<9} {:<8} {verdict}", if *present { "yes" } else { "no" });
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(Error::CpuIncompatible(format!(
            "domain {}'s CPU policy differs from {file}: {}",
            dom.id(),
            wrong.join(", ")
        ))
        .into())
    }
}

/// `xenvcpu cpu export [--domain D | --type pv|hvm]`: the domain's policy, or the host's
/// maximum for the guest type, as JSON.
pub(super) fn export(host: &Host, dom: Option<&Domain>, guest: GuestType) -> CliResult {
    let policy = match dom {
        Some(dom) => dom.cpu_policy()?,
        None => host.cpu_policy(guest.max())?,
    };
    print!("{}", policy.to_portable().to_json());
    Ok(())
}

/// `xenvcpu capabilities [--json]`: libvirt's `<capabilities>` shape: the host CPU (vendor,
/// topology, features) and, per guest type, whether its CPU can be selected and the most
/// it may have.
pub(super) fn capabilities(host: &Host, json: bool) -> CliResult {
    let info = host.info()?;
    let policy = host.cpu_policy(FeaturesetKind::Host)?;
    let features = featureset(host, FeaturesetKind::Host)?;
    let vendor = policy.to_portable().vendor;
    let (sockets, cores, threads) = (info.nr_sockets(), info.phys.cores_per_socket, info.phys.threads_per_core);
    let guests: Vec<(GuestType, &str, CpuFeatures)> = [(GuestType::Pv, "xen"), (GuestType::Hvm, "hvm")]
        .into_iter()
        .map(|(g, os)| Ok((g, os, featureset(host, g.max())?)))
        .collect::<CliResult<_>>()?;
    let names = |set: &CpuFeatures| set.iter().map(|b| b.to_string()).collect::<Vec<_>>();
    if json {
        let value = json!({
            "host": {
                "cpu": {
                    "arch": "x86_64", "vendor": vendor.as_str(), "brand": policy.brand(),
                    "topology": {"sockets": sockets, "cores": cores, "threads": threads},
                    "features": names(&features),
                },
            },
            "guests": guests.iter().map(|(_, os, max)| json!({
                "type": os, "arch": "x86_64", "cpu_selection": !max.is_empty(),
                "max_features": names(max),
            })).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(());
    }
    let mut out = String::from("<capabilities>\n  <host>\n    <cpu>\n      <arch>x86_64</arch>\n");
    out += &format!("      <vendor>{}</vendor>\n", xml_escape(vendor.as_str()));
    out += &format!("      <topology sockets='{sockets}' dies='1' cores='{cores}' threads='{threads}'/>\n");
    for name in names(&features) {
        out += &format!("      <feature name='{}'/>\n", xml_escape(&name));
    }
    out += "    </cpu>\n  </host>\n";
    for (_, os, max) in &guests {
        out += &format!("  <guest>\n    <os_type>{os}</os_type>\n    <arch name='x86_64'>\n");
        out += "      <domain type='xen'/>\n    </arch>\n    <features>\n";
        if !max.is_empty() {
            out += "      <cpuselection/>\n";
        }
        out += "    </features>\n    <cpu mode='maximum'>\n";
        for name in names(max) {
            out += &format!("      <feature name='{}'/>\n", xml_escape(&name));
        }
        out += "    </cpu>\n  </guest>\n";
    }
    out += "</capabilities>\n";
    print!("{out}");
    Ok(())
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;")
}
