/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * xenvcpu_xen_abi.h - the part of the Xen hypervisor's domctl/sysctl interface that
 * xenvcpu reads or passes through libxenctrl.
 *
 * Written by the xenvcpu project. This is NOT a copy of Xen's public headers: it declares,
 * in our own words, only the structures and numbers we use, with the byte layout Xen uses.
 * xen-sys/tests/layout.rs compiles this file and compares every size, alignment, field
 * offset, field size and constant with the Rust mirrors in xen-sys/src/abi.rs, and (when
 * Debian's libxen-dev is installed) with Xen's own <xenctrl.h>.
 *
 * Describes: Xen 4.17, 4.18, 4.19, 4.20, 4.21 and 4.22 on x86_64, as seen by a dom0 tool
 * (Xen's headers compiled with __XEN_TOOLS__). Every structure below has the same layout in
 * all six releases. What differs between them:
 *   - the interface version the hypervisor expects in every domctl/sysctl (table at the
 *     end; a mismatch is answered with EACCES);
 *   - XEN_DOMCTL_getdomaininfo for an absent domain: before 4.18 it reported the next
 *     existing domain, since 4.18 it fails with ESRCH (see xenvcpu_xenctrl.h for how we
 *     avoid depending on either).
 *
 * Conventions:
 *   - A Xen "64-bit guest handle" is declared here as a plain uint64_t that holds the
 *     address of the buffer. On x86_64 Xen declares a struct wrapping one pointer, which has
 *     the same size (8) and alignment (8).
 *   - Fields marked "in" are filled by the caller, "out" by the hypervisor.
 */
#ifndef XENVCPU_XEN_ABI_H
#define XENVCPU_XEN_ABI_H

#if !defined(__x86_64__)
#error "xenvcpu_xen_abi.h states the x86_64 layout only"
#endif

#include <stdint.h>

/* A domain number. Ordinary domains are numbered below DOMID_FIRST_RESERVED. */
typedef uint16_t domid_t;
#define DOMID_FIRST_RESERVED 0x7FF0

/*
 * A bitmap of CPUs passed by address. Byte i holds CPUs 8*i to 8*i+7, the lowest CPU in
 * the least significant bit; nr_bits says how many bits the buffer at `bitmap` holds.
 * Size 16: the 4 bytes after nr_bits are padding.
 */
struct xenctl_bitmap {
    uint64_t bitmap;              /* address of the bytes (guest handle) */
    uint32_t nr_bits;
};

/* ---- domctl: operations on one domain ----------------------------------------------- */

/* Values of xen_domctl.cmd used by xenvcpu (directly or inside libxenctrl). */
#define XEN_DOMCTL_getdomaininfo       5
#define XEN_DOMCTL_setvcpuaffinity     9
#define XEN_DOMCTL_getvcpuinfo        14
#define XEN_DOMCTL_max_vcpus          15
#define XEN_DOMCTL_getvcpuaffinity    25
#define XEN_DOMCTL_getnodeaffinity    69

/* x86 part of a domain's creation-time configuration, reported by getdomaininfo. */
struct xen_arch_domainconfig {
    uint32_t emulation_flags;     /* which devices Xen emulates for the domain */
    uint32_t misc_flags;
};

/* Bits of xen_arch_domainconfig.emulation_flags. A PV domain has none. An HVM container
 * has the local APIC; libxl gives a PVH guest that alone (a PVH dom0 also gets the IO-APIC
 * and vPCI), and an HVM guest the whole set of legacy platform devices, the 8259 PIC
 * among them: a PIC means a full HVM guest with a device model. */
#define XEN_X86_EMU_LAPIC         (1U << 0)
#define XEN_X86_EMU_HPET          (1U << 1)
#define XEN_X86_EMU_PM            (1U << 2)
#define XEN_X86_EMU_RTC           (1U << 3)
#define XEN_X86_EMU_IOAPIC        (1U << 4)
#define XEN_X86_EMU_PIC           (1U << 5)
#define XEN_X86_EMU_VGA           (1U << 6)
#define XEN_X86_EMU_IOMMU         (1U << 7)
#define XEN_X86_EMU_PIT           (1U << 8)
#define XEN_X86_EMU_USE_PIRQ      (1U << 9)
#define XEN_X86_EMU_VPCI          (1U << 10)

/* Bits of xen_domctl_getdomaininfo.flags. */
#define XEN_DOMINF_dying          (1U << 0)  /* being destroyed */
#define XEN_DOMINF_hvm_guest      (1U << 1)  /* HVM (or PVH) rather than PV */
#define XEN_DOMINF_shutdown       (1U << 2)  /* the guest has shut down */
#define XEN_DOMINF_paused         (1U << 3)  /* paused by the toolstack */
#define XEN_DOMINF_blocked        (1U << 4)  /* waiting for an event */
#define XEN_DOMINF_running        (1U << 5)  /* on a physical CPU right now */
#define XEN_DOMINF_debugged       (1U << 6)  /* under a debugger */
#define XEN_DOMINF_xs_domain      (1U << 7)  /* runs xenstored */
#define XEN_DOMINF_hap            (1U << 8)  /* uses hardware-assisted paging */
/* The guest's shutdown reason sits in flags bits 16..23. */
#define XEN_DOMINF_shutdownshift  16
#define XEN_DOMINF_shutdownmask   255

/* max_vcpu_id of a domain that has no vCPUs at all. */
#define XEN_INVALID_MAX_VCPU_ID   (~0U)

/* XEN_DOMCTL_getdomaininfo payload (also the element type of XEN_SYSCTL_getdomaininfolist).
 * All fields out. Size 112. */
struct xen_domctl_getdomaininfo {
    domid_t  domain;              /* the domain described (compare with what you asked!) */
    uint16_t pad1;
    uint32_t flags;               /* XEN_DOMINF_* and the shutdown reason */
    uint64_t tot_pages;
    uint64_t max_pages;
    uint64_t outstanding_pages;
    uint64_t shr_pages;
    uint64_t paged_pages;
    uint64_t shared_info_frame;
    uint64_t cpu_time;            /* ns, all vCPUs */
    uint32_t nr_online_vcpus;     /* vCPUs that are up */
    uint32_t max_vcpu_id;         /* highest vCPU id, or XEN_INVALID_MAX_VCPU_ID */
    uint32_t ssidref;
    uint8_t  handle[16];          /* the domain's UUID */
    uint32_t cpupool;
    uint8_t  gpaddr_bits;
    uint8_t  pad2[7];
    struct xen_arch_domainconfig arch_config;
};

/* Bits of xen_domctl_vcpuaffinity.flags: which of the two maps to set or get. */
#define XEN_VCPUAFFINITY_HARD     (1U << 0)  /* where the vCPU may run */
#define XEN_VCPUAFFINITY_SOFT     (1U << 1)  /* where the scheduler prefers it to run */
#define XEN_VCPUAFFINITY_FORCE    (1U << 2)  /* also drop a guest's temporary pin override */

/* XEN_DOMCTL_setvcpuaffinity / XEN_DOMCTL_getvcpuaffinity payload. Size 40.
 * On set, both maps are in/out: Xen writes back the effective affinity. */
struct xen_domctl_vcpuaffinity {
    uint32_t vcpu;                /* in */
    uint32_t flags;               /* in: XEN_VCPUAFFINITY_* */
    struct xenctl_bitmap cpumap_hard;
    struct xenctl_bitmap cpumap_soft;
};

/* XEN_DOMCTL_getvcpuinfo payload. Size 24. */
struct xen_domctl_getvcpuinfo {
    uint32_t vcpu;                /* in */
    uint8_t  online;              /* out: the vCPU is up */
    uint8_t  blocked;             /* out: waiting for an event */
    uint8_t  running;             /* out: on a physical CPU now */
    uint64_t cpu_time;            /* out: ns spent running */
    uint32_t cpu;                 /* out: physical CPU last used (stale while offline) */
};

/* XEN_DOMCTL_max_vcpus payload. Size 4. */
struct xen_domctl_max_vcpus {
    uint32_t max;                 /* in */
};

/* XEN_DOMCTL_getnodeaffinity payload. Size 16. Out: the NUMA nodes the domain's memory
 * is allocated from, a bitmap with the layout of a CPU bitmap indexed by node id. */
struct xen_domctl_nodeaffinity {
    struct xenctl_bitmap nodemap;
};

/* The domctl hypercall argument. Size 144; the payload union is 128 bytes at offset 16. */
struct xen_domctl {
    uint32_t cmd;                 /* XEN_DOMCTL_* */
    uint32_t interface_version;   /* the release's domctl interface version */
    domid_t  domain;
    uint16_t _pad[3];
    union {
        struct xen_domctl_getdomaininfo getdomaininfo;
        struct xen_domctl_nodeaffinity  nodeaffinity;
        struct xen_domctl_vcpuaffinity  vcpuaffinity;
        struct xen_domctl_getvcpuinfo   getvcpuinfo;
        struct xen_domctl_max_vcpus     max_vcpus;
        uint8_t                         pad[128];
    } u;
};

/* ---- sysctl: host-wide operations --------------------------------------------------- */

#define XEN_SYSCTL_physinfo             3
#define XEN_SYSCTL_getdomaininfolist    6
#define XEN_SYSCTL_cputopoinfo         16

/* XEN_SYSCTL_physinfo payload. All fields out. Size 112. */
struct xen_sysctl_physinfo {
    uint32_t threads_per_core;
    uint32_t cores_per_socket;
    uint32_t nr_cpus;             /* CPUs online now */
    uint32_t max_cpu_id;          /* highest CPU id this host can have: size maps from this */
    uint32_t nr_nodes;
    uint32_t max_node_id;
    uint32_t cpu_khz;
    uint32_t capabilities;
    uint32_t arch_capabilities;
    uint32_t pad;
    uint64_t total_pages;
    uint64_t free_pages;
    uint64_t scrub_pages;
    uint64_t outstanding_pages;
    uint64_t max_mfn;
    uint32_t hw_cap[8];
};

/* core/socket/node value of a CPU that is not present. */
#define XEN_INVALID_CORE_ID     (~0U)
#define XEN_INVALID_SOCKET_ID   (~0U)
#define XEN_INVALID_NODE_ID     (~0U)

/* One element of the XEN_SYSCTL_cputopoinfo array, indexed by CPU id. Size 12. */
struct xen_sysctl_cputopo {
    uint32_t core;
    uint32_t socket;
    uint32_t node;
};

/* XEN_SYSCTL_cputopoinfo payload. Size 16. A zero cputopo address asks only for the
 * number of entries Xen would write (returned in num_cpus). */
struct xen_sysctl_cputopoinfo {
    uint32_t num_cpus;            /* in: entries at cputopo; out: entries written/needed */
    uint64_t cputopo;             /* address of struct xen_sysctl_cputopo[num_cpus] */
};

/* ---- CPUID policy and featuresets (x86) ---------------------------------------------- */
/* One CPUID leaf of a serialised CPU policy. Size 24, align 4. subleaf is
 * XEN_CPUID_NO_SUBLEAF for a leaf without subleaves; a..d are eax, ebx, ecx, edx. */
#define XEN_CPUID_NO_SUBLEAF 0xffffffffu
typedef struct xen_cpuid_leaf {
    uint32_t leaf;
    uint32_t subleaf;
    uint32_t a;
    uint32_t b;
    uint32_t c;
    uint32_t d;
} xen_cpuid_leaf_t;

/* One MSR of a serialised CPU policy. Size 16, align 8. Xen 4.17-4.22 serialise two:
 * 0xce (MSR_INTEL_PLATFORM_INFO, bit 31 = CPUID faulting) and 0x10a (MSR_ARCH_CAPABILITIES). */
typedef struct xen_msr_entry {
    uint32_t idx;
    uint32_t flags;               /* reserved, zero */
    uint64_t val;
} xen_msr_entry_t;

/* Index argument of XEN_SYSCTL_get_cpu_featureset (xc_get_cpu_featureset). 4 and 5 exist
 * from 4.17.2 (4.18.0 upstream); an older hypervisor answers them with EINVAL. */
#define XEN_SYSCTL_cpu_featureset_raw      0
#define XEN_SYSCTL_cpu_featureset_host     1
#define XEN_SYSCTL_cpu_featureset_pv       2
#define XEN_SYSCTL_cpu_featureset_hvm      3
#define XEN_SYSCTL_cpu_featureset_pv_max   4
#define XEN_SYSCTL_cpu_featureset_hvm_max  5

/* Index argument of XEN_SYSCTL_get_cpu_policy (xc_cpu_policy_get_system). Note the order
 * differs from the featureset indices above. */
#define XEN_SYSCTL_cpu_policy_raw          0
#define XEN_SYSCTL_cpu_policy_host         1
#define XEN_SYSCTL_cpu_policy_pv_max       2
#define XEN_SYSCTL_cpu_policy_hvm_max      3
#define XEN_SYSCTL_cpu_policy_pv_default   4
#define XEN_SYSCTL_cpu_policy_hvm_default  5

/* ---- interface versions per release -------------------------------------------------- */
/* The hypervisor rejects a domctl/sysctl whose interface_version differs from its own
 * with EACCES. libxenctrl fills these in, so a libxenctrl from another release than the
 * running hypervisor fails this way. */
#define XENVCPU_XEN_4_17_DOMCTL_INTERFACE_VERSION 0x15
#define XENVCPU_XEN_4_17_SYSCTL_INTERFACE_VERSION 0x15
#define XENVCPU_XEN_4_18_DOMCTL_INTERFACE_VERSION 0x16
#define XENVCPU_XEN_4_18_SYSCTL_INTERFACE_VERSION 0x15
#define XENVCPU_XEN_4_19_DOMCTL_INTERFACE_VERSION 0x17
#define XENVCPU_XEN_4_19_SYSCTL_INTERFACE_VERSION 0x15
#define XENVCPU_XEN_4_20_DOMCTL_INTERFACE_VERSION 0x17
#define XENVCPU_XEN_4_20_SYSCTL_INTERFACE_VERSION 0x15
#define XENVCPU_XEN_4_21_DOMCTL_INTERFACE_VERSION 0x17
#define XENVCPU_XEN_4_21_SYSCTL_INTERFACE_VERSION 0x16
#define XENVCPU_XEN_4_22_DOMCTL_INTERFACE_VERSION 0x18
#define XENVCPU_XEN_4_22_SYSCTL_INTERFACE_VERSION 0x16

/* ---- schedulers ---------------------------------------------------------------------- */
/* A cpupool's scheduler (xc_cpupoolinfo_t.sched_id). 4 was SEDF, removed. */
#define XEN_SCHEDULER_CREDIT   5
#define XEN_SCHEDULER_CREDIT2  6
#define XEN_SCHEDULER_ARINC653 7
#define XEN_SCHEDULER_RTDS     8
#define XEN_SCHEDULER_NULL     9

/* ---- XENVER (version hypercall) ------------------------------------------------------ */
/* xc_version(xch, XENVER_version, NULL) returns (major << 16) | minor of the hypervisor. */
#define XENVER_version 0

#endif /* XENVCPU_XEN_ABI_H */
