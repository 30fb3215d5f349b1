//! A domain's CPUID policy, read from Xen and decoded ([`Domain::cpu_policy`]).

use crate::error::{Error, Result};
use crate::host::policy_error;
use crate::hypervisor::XenCpuPolicy;
use crate::Domain;

impl Domain {
    /// The domain's CPUID policy (libxenguest's `xc_cpu_policy_get_domain`), decoded:
    /// vendor, leaf limits, MSR_PLATFORM_INFO and the featureset, in as many words as the
    /// hypervisor's featuresets (so that it lines up with [`crate::Host::featureset`]).
    /// Works on a running domain; it is what the guest sees through CPUID, after Xen
    /// clamped what the toolstack asked for (`cpuid=` in xl.cfg) to the type's maximum.
    ///
    /// # Errors
    /// [`Error::NoSuchDomain`] once the domain is gone; otherwise as
    /// [`crate::Host::featureset`] ([`Error::LibraryNotFound`] without libxenguest).
    pub fn cpu_policy(&self) -> Result<XenCpuPolicy> {
        let host = self.host();
        let len = host.featureset_len()?;
        let domid = self.id();
        match host.hypervisor().domain_cpu_policy(domid.get()) {
            Ok(raw) => Ok(XenCpuPolicy::decode(raw, len)),
            Err(crate::hypervisor::PolicyCallError::Xen(errno))
                if errno.raw() == libc::ESRCH && matches!(host.hypervisor().domain_info(domid.get()), Ok(None)) =>
            {
                Err(Error::NoSuchDomain { domid })
            }
            Err(e) => Err(policy_error(e, "xc_cpu_policy_get_domain", &format!("domain {domid}"))),
        }
    }
}
