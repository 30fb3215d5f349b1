//! The libvirt shape of a domain's vCPUs, for tools that speak libvirt's formats:
//! `virDomainPinVcpu` and `virDomainGetVcpus` with byte maps of `maplen` bytes. Reached
//! through [`Domain::libvirt`]; the idiomatic calls are on [`Domain`] itself.

use crate::cpumap::{self, CpuMap};
use crate::error::{Error, Result};

use super::{with_maps, AffinityRequest, Domain, VcpuInfo};
use crate::ids::VcpuId;

/// libvirt's `virVcpuInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibvirtVcpuInfo {
    /// The vCPU number.
    pub number: u32,
    /// `virVcpuState`: 0 offline, 1 running (or runnable), 2 blocked.
    pub state: i32,
    /// CPU time in ns.
    pub cpu_time: u64,
    /// The physical CPU, or -1 (`VIR_VCPU_INFO_CPU_OFFLINE`) when offline.
    pub cpu: i32,
}

/// The libvirt-shaped calls on one domain ([`Domain::libvirt`]).
#[derive(Debug, Clone, Copy)]
pub struct Libvirt<'a> {
    dom: &'a Domain,
}

impl Domain {
    /// The libvirt-shaped calls on this domain: `pin_vcpu`, `get_vcpus`.
    pub fn libvirt(&self) -> Libvirt<'_> {
        Libvirt { dom: self }
    }
}

impl Libvirt<'_> {
    /// libvirt's `virDomainPinVcpu`: sets hard affinity from a libvirt byte map.
    ///
    /// # Errors
    /// [`Error::CpuMap`] when the map sets CPUs the host lacks (refused, not dropped), and
    /// the errors of [`set_affinity`](Domain::set_affinity).
    pub fn pin_vcpu(&self, vcpu: u32, cpumap: &[u8]) -> Result<()> {
        let map = with_maps(self.dom.host().cpumap_size(), |xen, _| {
            cpumap::libvirt_to_xen(cpumap, xen, self.dom.host().nr_cpus())?;
            Ok::<_, Error>(CpuMap::from_libvirt_bytes(xen))
        })?;
        self.dom.set_affinity(VcpuId(vcpu), &AffinityRequest::hard(&map)).map(drop)
    }

    /// libvirt's `virDomainGetVcpus`: the first `min(maxinfo, max_vcpus())` vCPUs, and
    /// their hard affinity in `cpumaps` (vCPU `v` at `v * maplen`) when given.
    ///
    /// Each map is `maplen` bytes whatever the host's size, as in libvirt: a map wider
    /// than the host is zero-filled past its last CPU, and a map narrower than the host is
    /// *truncated* (it shows CPUs `0..maplen * 8` only). So a caller's fixed-size maps
    /// (libvirt's `VIR_MAX_CPUS / 8`, 32 bytes, say) keep working on a larger host.
    ///
    /// Fixes of libvirt's Xen drivers: an online runnable vCPU is `RUNNING` (1), not
    /// offline; an offline vCPU has cpu -1; the count returned is the number filled.
    ///
    /// # Errors
    /// [`Error::CpuMap`] when `cpumaps` is shorter than `n * maplen`, and the errors of
    /// [`vcpus`](Domain::vcpus). On error `cpumaps` is zeroed.
    pub fn get_vcpus(&self, maxinfo: usize, cpumaps: Option<&mut [u8]>, maplen: usize) -> Result<Vec<LibvirtVcpuInfo>> {
        let n = maxinfo.min(self.dom.max_vcpus() as usize);
        let mut cpumaps = cpumaps;
        if let Some(maps) = cpumaps.as_deref_mut() {
            let needed = n.checked_mul(maplen).ok_or(cpumap::CpuMapError::SizeOverflow { len: maplen, count: n })?;
            if maps.len() < needed {
                return Err(cpumap::CpuMapError::BufferTooSmall { what: "cpumaps", needed, got: maps.len() }.into());
            }
        }
        let result = self.fill_vcpus(n, cpumaps.as_deref_mut(), maplen);
        if result.is_err() {
            if let Some(maps) = cpumaps {
                maps[..n * maplen].fill(0);
            }
        }
        result
    }

    fn fill_vcpus(&self, n: usize, cpumaps: Option<&mut [u8]>, maplen: usize) -> Result<Vec<LibvirtVcpuInfo>> {
        with_maps(self.dom.host().cpumap_size(), |xen, _| self.fill_vcpus_with(n, cpumaps, maplen, xen))
    }

    fn fill_vcpus_with(
        &self,
        n: usize,
        mut cpumaps: Option<&mut [u8]>,
        maplen: usize,
        xen: &mut [u8],
    ) -> Result<Vec<LibvirtVcpuInfo>> {
        let mut info = VcpuInfo::empty();
        let mut out = Vec::with_capacity(n);
        for v in 0..n as u32 {
            self.dom.vcpu_info_into(VcpuId(v), &mut info)?;
            out.push(LibvirtVcpuInfo {
                number: v,
                state: info.state.to_libvirt(),
                cpu_time: info.cpu_time_ns,
                cpu: info.cpu.map_or(-1, |c| c.get() as i32),
            });
            if let Some(maps) = cpumaps.as_deref_mut() {
                info.hard.write_libvirt_bytes(xen)?;
                let slot = cpumap::get_cpumap_mut(maps, maplen, v as usize);
                // A slot narrower than the host gets the front of the map (libvirt's
                // truncation): the CPUs past it are not shown, which is not an error.
                let shown = &xen[..xen.len().min(slot.len())];
                cpumap::xen_to_libvirt(shown, slot, self.dom.host().nr_cpus())?;
            }
        }
        Ok(out)
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use std::sync::Arc;

    use crate::cpumap::{self, CpuMap};
    use crate::hypervisor::{SimConfig, SimDomain, SimHost};
    use crate::{AffinityRequest, DomId, Host, VcpuId};

    /// A host of `nr_cpus` CPUs with dom0 (4 vCPUs, all online) and a guest (domain 1, 4
    /// vCPUs, 2 online).
    fn host(nr_cpus: u32) -> Host {
        let hv = SimHost::new(SimConfig { nr_cpus, cores_per_socket: nr_cpus, ..SimConfig::default() });
        hv.add_domain(SimDomain { domid: 0, max_vcpus: 4, online: 4, hvm: false });
        hv.add_domain(SimDomain { domid: 1, max_vcpus: 4, online: 2, hvm: false });
        Host::with_shared_backend(Arc::new(hv)).unwrap()
    }

    fn pin(host: &Host, vcpu: u32, cpus: &str) -> CpuMap {
        let map: CpuMap = cpus.parse().unwrap();
        host.domain(DomId(0)).unwrap().set_affinity(VcpuId(vcpu), &AffinityRequest::hard(&map)).unwrap();
        map
    }

    #[test]
    fn a_map_narrower_than_the_host_is_truncated_as_libvirt_does() {
        // 300 CPUs: libvirt's fixed 32-byte maps (VIR_MAX_CPUS / 8) show CPUs 0-255.
        let host = host(300);
        pin(&host, 0, "1,200,255,256,299");
        pin(&host, 1, "256-299");
        pin(&host, 2, "7-8");
        let dom0 = host.domain(DomId(0)).unwrap();
        let maplen = 32;
        let mut maps = vec![0xeeu8; 4 * maplen];
        let infos = dom0.libvirt().get_vcpus(4, Some(&mut maps), maplen).unwrap();
        assert_eq!(infos.len(), 4);
        let shown = |v: usize| CpuMap::from_libvirt_bytes(cpumap::get_cpumap(&maps, maplen, v));
        assert_eq!(shown(0), "1,200,255".parse().unwrap());
        assert!(shown(1).is_empty(), "every CPU of vCPU 1 lies past the map: {}", shown(1));
        assert_eq!(shown(2), "7-8".parse().unwrap());
        assert_eq!(shown(3), "0-255".parse().unwrap(), "all CPUs, cut at the map's end");
        // One byte: CPUs 0-7 only.
        let mut one = vec![0xeeu8; 4];
        dom0.libvirt().get_vcpus(4, Some(&mut one), 1).unwrap();
        assert_eq!(one, [0b10, 0, 0x80, 0xff]);
    }

    #[test]
    fn a_map_wider_than_the_host_is_zero_filled_past_it() {
        let host = host(4);
        pin(&host, 1, "0,3");
        let dom0 = host.domain(DomId(0)).unwrap();
        let mut maps = vec![0xeeu8; 4 * 5];
        dom0.libvirt().get_vcpus(4, Some(&mut maps), 5).unwrap();
        assert_eq!(&maps[..5], &[0x0f, 0, 0, 0, 0]);
        assert_eq!(&maps[5..10], &[0b1001, 0, 0, 0, 0]);
    }

    #[test]
    fn a_map_of_the_hosts_size_and_a_short_array() {
        let host = host(12);
        pin(&host, 0, "9-11");
        let dom0 = host.domain(DomId(0)).unwrap();
        let mut maps = vec![0u8; 4 * 2];
        dom0.libvirt().get_vcpus(4, Some(&mut maps), 2).unwrap();
        assert_eq!(&maps[..2], &[0, 0x0e]);
        assert_eq!(&maps[2..4], &[0xff, 0x0f]);
        // An array too short for the vCPUs asked for is an error, not a truncation.
        let mut short = vec![0xeeu8; 3];
        assert!(matches!(dom0.libvirt().get_vcpus(2, Some(&mut short), 2), Err(crate::Error::CpuMap(_))));
        // Offline vCPUs of the guest: state 0 and cpu -1.
        let guest = host.domain(DomId(1)).unwrap();
        let infos = guest.libvirt().get_vcpus(8, None, 0).unwrap();
        assert_eq!(infos.iter().map(|i| (i.state == 0, i.cpu)).filter(|&(off, _)| off).count(), 2);
        assert!(infos[2..].iter().all(|i| i.state == 0 && i.cpu == -1));
    }
}
