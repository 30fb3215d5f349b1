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
    /// Fixes of libvirt's Xen drivers: an online runnable vCPU is `RUNNING` (1), not
    /// offline; an offline vCPU has cpu -1; the count returned is the number filled.
    ///
    /// # Errors
    /// [`Error::CpuMap`] when `cpumaps` is shorter than `n * maplen` or a map does not fit
    /// `maplen`, and the errors of [`vcpus`](Domain::vcpus). On error `cpumaps` is zeroed.
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
                cpumap::xen_to_libvirt(xen, slot, self.dom.host().nr_cpus())?;
            }
        }
        Ok(out)
    }
}
