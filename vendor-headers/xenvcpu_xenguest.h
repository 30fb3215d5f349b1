/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * xenvcpu_xenguest.h - the libxenguest functions xenvcpu calls (CPU featuresets and CPUID
 * policies), with the types they take.
 *
 * Written by the xenvcpu project; not a copy of Xen's <xenguest.h>. xen-sys dlopen()s
 * libxenguest.so.4.<minor> of the same release as the libxenctrl it loaded
 * (xen-sys/src/guest.rs) and looks up exactly these symbols. xen-sys/tests/layout.rs checks
 * that each prototype below has the type of the one in Xen's <xenguest.h> when installed.
 *
 * Describes: libxenguest of Xen 4.17 ... 4.22 (x86 only). The featureset and CPU policy
 * calls live in libxenguest, not libxenctrl, in all six releases (they moved to
 * <xenguest.h> before 4.17), and every prototype here is the same in all six.
 *
 * The policy object is opaque: libxenguest allocates it (xc_cpu_policy_init) and frees it
 * (xc_cpu_policy_destroy); its layout is private to libxenguest and changed in 4.18.
 * Only the serialised form (xen_cpuid_leaf_t, xen_msr_entry_t of xenvcpu_xen_abi.h)
 * crosses the boundary.
 *
 * All int functions return 0 on success and -1 with errno set on failure. The
 * xc_interface must come from the libxenctrl this libxenguest was built with (same
 * release): xen-sys only pairs libraries of one release.
 */
#ifndef XENVCPU_XENGUEST_H
#define XENVCPU_XENGUEST_H

#include <stdint.h>
#include "xenvcpu_xenctrl.h"

/* Opaque, heap-allocated by libxenguest. */
typedef struct xc_cpu_policy xc_cpu_policy_t;

/* XEN_SYSCTL_get_cpu_featureset. index: XEN_SYSCTL_cpu_featureset_*. In: *nr_features is
 * the number of words at featureset. With featureset == NULL, Xen writes the number of
 * words it has (14 to 19, even within one minor release) and copies nothing. A buffer
 * shorter than that gets the first *nr_features words and the call fails with ENOBUFS.
 * Unknown index: EINVAL; PV or HVM compiled out: EOPNOTSUPP. */
int xc_get_cpu_featureset(xc_interface *xch, uint32_t index,
                          uint32_t *nr_features, uint32_t *featureset);

/* A new, empty policy object (NULL on allocation failure), and its release. */
xc_cpu_policy_t *xc_cpu_policy_init(void);
void xc_cpu_policy_destroy(xc_cpu_policy_t *policy);

/* XEN_SYSCTL_get_cpu_policy into policy; policy_idx: XEN_SYSCTL_cpu_policy_*. */
int xc_cpu_policy_get_system(xc_interface *xch, unsigned int policy_idx,
                             xc_cpu_policy_t *policy);
/* XEN_DOMCTL_get_cpu_policy of domid into policy (works on running domains). */
int xc_cpu_policy_get_domain(xc_interface *xch, uint32_t domid, xc_cpu_policy_t *policy);

/* The policy as CPUID leaves and MSRs. In: *nr_leaves / *nr_msrs are the capacities of
 * leaves / msrs (either array may be NULL and is then skipped); out: the counts written.
 * Too small a capacity: ENOBUFS. */
int xc_cpu_policy_serialise(xc_interface *xch, const xc_cpu_policy_t *policy,
                            xen_cpuid_leaf_t *leaves, uint32_t *nr_leaves,
                            xen_msr_entry_t *msrs, uint32_t *nr_msrs);

/* The largest serialised policy Xen can produce (120 leaves and 2 MSRs in 4.17-4.22). */
int xc_cpu_policy_get_size(xc_interface *xch, uint32_t *nr_leaves, uint32_t *nr_msrs);

#endif /* XENVCPU_XENGUEST_H */
