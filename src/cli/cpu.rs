//! `xenvcpu cpu ...`: a guest's `<cpu>` turned into libxl's `cpuid=`, and CPU policies
//! compared for migration.

use serde_json::json;

use super::CliResult;
use crate::cpu::{compare, CpuPolicy, GuestCpu};
use crate::Error;

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
