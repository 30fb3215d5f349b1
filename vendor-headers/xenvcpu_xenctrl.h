/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * xenvcpu_xenctrl.h - the libxenctrl functions xenvcpu calls, with the types they take.
 *
 * Written by the xenvcpu project; not a copy of Xen's <xenctrl.h>. xen-sys never links
 * against libxenctrl: it dlopen()s libxenctrl.so.4.<minor> at run time and looks up exactly
 * these symbols (xen-sys/src/loader.rs). xen-sys/tests/layout.rs checks, at compile time of
 * a small C program, that each prototype below has the same type as the one in Xen's own
 * <xenctrl.h> when that is installed.
 *
 * Describes: libxenctrl of Xen 4.17, 4.18, 4.19, 4.20, 4.21 and 4.22 (sonames
 * libxenctrl.so.4.17 ... libxenctrl.so.4.22). Every prototype here is the same in all six.
 * libxenctrl has no ABI stability between releases; what we rely on and why:
 *   - xc_domain_getinfo() exists only up to 4.17 (removed in 4.18 with its xc_dominfo_t);
 *     xc_domain_getinfo_single() exists only from 4.18. We use neither: we call
 *     xc_domain_getinfolist(xch, domid, 1, &info), present in every release, and accept the
 *     answer only if info.domain == domid, because the sysctl behind it lists domains
 *     starting at the first existing id >= domid.
 *   - The structures these functions fill are in xenvcpu_xen_abi.h.
 *
 * All functions return -1 (or NULL) and set errno on failure unless noted. A handle opened
 * without XC_OPENFLAG_NON_REENTRANT may be used from several threads at once; a child
 * process must not use a handle inherited through fork().
 */
#ifndef XENVCPU_XENCTRL_H
#define XENVCPU_XENCTRL_H

#include <stdint.h>
#include "xenvcpu_xen_abi.h"

/* Opaque: an open connection to the hypervisor (privcmd and friends). */
typedef struct xc_interface_core xc_interface;
/* libxentoollog's logger (<xentoollog.h>; xen-sys mirrors its three callbacks and passes
 * its own logger, since NULL means "print to stderr"). */
typedef struct xentoollog_logger xentoollog_logger;

/* Flags for xc_interface_open. */
#define XC_OPENFLAG_DUMMY          (1 << 0)  /* do not open the hypervisor interface */
#define XC_OPENFLAG_NON_REENTRANT  (1 << 1)  /* caller serialises all calls on the handle */

/* A CPU bitmap of exactly xc_get_cpumap_size() bytes, same bit order as xenctl_bitmap. */
typedef uint8_t *xc_cpumap_t;
/* A NUMA node bitmap of exactly xc_get_nodemap_size() bytes, bit i = node i. */
typedef uint8_t *xc_nodemap_t;

typedef struct xen_domctl_getdomaininfo xc_domaininfo_t;
typedef struct xen_domctl_getvcpuinfo   xc_vcpuinfo_t;
typedef struct xen_sysctl_physinfo      xc_physinfo_t;
typedef struct xen_sysctl_cputopo       xc_cputopo_t;

/* One cpupool, as xc_cpupool_getinfo returns it. libxenctrl allocates the struct and
 * the map together (the map, xc_get_cpumap_size() bytes, follows the struct in the same
 * allocation): release both with xc_cpupool_infofree, never free the map alone. Size 24. */
typedef struct xc_cpupoolinfo {
    uint32_t cpupool_id;   /* the pool's id (Pool-0 is 0) */
    uint32_t sched_id;     /* XEN_SCHEDULER_* */
    uint32_t n_dom;        /* domains in the pool */
    xc_cpumap_t cpumap;    /* its CPUs */
} xc_cpupoolinfo_t;

/* "Any pool id": what xc_cpupool_create takes to let Xen choose the id. */
#define XC_CPUPOOL_POOLID_ANY 0xFFFFFFFF

/* Open a handle; NULL loggers mean "log to stderr" (xen-sys passes its own).
 * NULL + errno on failure
 * (ENOENT: no privcmd, i.e. not running on Xen; EACCES: not root). */
xc_interface *xc_interface_open(xentoollog_logger *logger,
                                xentoollog_logger *dombuild_logger,
                                unsigned open_flags);
/* Close a handle from xc_interface_open. */
int xc_interface_close(xc_interface *xch);

/* Hypervisor version queries; with cmd == XENVER_version and arg == NULL the result is
 * (major << 16) | minor. */
int xc_version(xc_interface *xch, int cmd, void *arg);

/* (physinfo.max_cpu_id + 1 + 7) / 8: the byte size of every xc_cpumap_t. */
int xc_get_cpumap_size(xc_interface *xch);

/* (physinfo.max_node_id + 1 + 7) / 8: the byte size of every xc_nodemap_t. */
int xc_get_nodemap_size(xc_interface *xch);

/* Fill *info. */
int xc_physinfo(xc_interface *xch, xc_physinfo_t *info);
/* In: *max_cpus = number of elements at cputopo (cputopo may be NULL to ask for the
 * count). Out: *max_cpus = elements written (or needed). */
int xc_cputopoinfo(xc_interface *xch, unsigned *max_cpus, xc_cputopo_t *cputopo);

/* Describe up to max_domains existing domains with id >= first_domain, in id order.
 * Returns the number of elements written. */
int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain,
                          unsigned int max_domains, xc_domaininfo_t *info);

/* Fill *info for one vCPU (EINVAL: vcpu >= the domain's vCPU count; ESRCH: no domain or
 * vCPU). libxenctrl passes vcpu on as 16 bits: callers keep it below 65536. */
int xc_vcpu_getinfo(xc_interface *xch, uint32_t domid, uint32_t vcpu, xc_vcpuinfo_t *info);

/* Set the hard and/or soft affinity selected by flags (XEN_VCPUAFFINITY_*). Each map that
 * flags selects must be non-NULL and exactly xc_get_cpumap_size() bytes: libxenctrl copies
 * that many bytes in and, on success, writes the effective affinity back over them. */
int xc_vcpu_setaffinity(xc_interface *xch, uint32_t domid, int vcpu,
                        xc_cpumap_t cpumap_hard_inout, xc_cpumap_t cpumap_soft_inout,
                        uint32_t flags);
/* Read the affinity maps selected by flags into buffers of exactly xc_get_cpumap_size()
 * bytes each (the maps as set, not intersected with online CPUs). */
int xc_vcpu_getaffinity(xc_interface *xch, uint32_t domid, int vcpu,
                        xc_cpumap_t cpumap_hard, xc_cpumap_t cpumap_soft, uint32_t flags);

/* XEN_DOMCTL_max_vcpus. Since Xen 4.12 the vCPU count is fixed at creation: this succeeds
 * only when max equals it (EINVAL otherwise). */
int xc_domain_max_vcpus(xc_interface *xch, uint32_t domid, unsigned int max);

/* XEN_DOMCTL_getnodeaffinity: the NUMA nodes the domain has affinity with (where Xen
 * allocates its memory), into a buffer of exactly xc_get_nodemap_size() bytes, which
 * libxenctrl writes whole. Unless set explicitly, Xen derives it from the vCPUs' affinity:
 * the nodes of the CPUs they may (or prefer to) run on. */
int xc_domain_node_getaffinity(xc_interface *xch, uint32_t domid, xc_nodemap_t nodemap);

/* The first cpupool whose id is >= poolid (XEN_SYSCTL_CPUPOOL_OP_INFO), in a new
 * allocation to release with xc_cpupool_infofree. NULL + errno on failure; ENOENT when no
 * pool has an id >= poolid. List every pool as xl does: from 0, then from the last id + 1. */
xc_cpupoolinfo_t *xc_cpupool_getinfo(xc_interface *xch, uint32_t poolid);
/* Release what xc_cpupool_getinfo returned (the struct and its map). */
void xc_cpupool_infofree(xc_interface *xch, xc_cpupoolinfo_t *info);
/* The online CPUs that are in no cpupool (XEN_SYSCTL_CPUPOOL_OP_FREEINFO), as a new map of
 * xc_get_cpumap_size() bytes allocated with calloc: the caller releases it once with
 * free(). NULL + errno on failure. Every online CPU is either free or in exactly one pool,
 * so the online CPUs are this map with every pool's map. */
xc_cpumap_t xc_cpupool_freeinfo(xc_interface *xch);

#endif /* XENVCPU_XENCTRL_H */
