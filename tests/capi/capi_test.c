/*
 * The C API of xenvcpu, exercised from C: every function, every error path, and several
 * threads on one connection.
 *
 *   capi_test URI     URI "sim:///lab" (the simulated lab) or "-" (this host: NULL)
 *
 * Both expect the lab's shape: 4 host CPUs, Domain-0 with 4 vCPUs, "labguest" (PV, 4
 * vCPUs, 0-1 online), and on the simulator "hvmguest" (HVM). Everything changed is put
 * back (labguest: vCPUs 0-1 online, every vCPU on every CPU). Prints one line per check
 * and a last line "capi: N passed, N failed"; exits 0 only when none failed.
 *
 * Built by capi/tests/c_program.rs (host) and tests/lab/lab.sh (run in the lab's dom0).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xenvcpu.h>

#define HOST_CPUS 4
#define GUEST_VCPUS 4
#define NO_DOMID 32000u /* no domain has it */
#define WAIT_SECONDS 120
#define THREADS 4
#define ROUNDS 50

static int passed, failed;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(int ok, const char *what, const char *detail)
{
    pthread_mutex_lock(&report_lock);
    if (ok) {
        passed++;
        printf("ok - %s\n", what);
    } else {
        failed++;
        printf("FAILED - %s: %s\n", what, detail);
    }
    fflush(stdout);
    pthread_mutex_unlock(&report_lock);
}

/* A check of a plain condition. */
#define CHECK(cond, what)                                                                      \
    do {                                                                                       \
        char d_[512];                                                                          \
        snprintf(d_, sizeof d_, "%s is false (line %d; last error: %s)", #cond, __LINE__,      \
                 xenvcpu_last_error());                                                        \
        report(!!(cond), (what), d_);                                                          \
    } while (0)

/* A call that must succeed: `ret` is not -1, and no error is left behind. */
static void expect_ok(int ret, const char *what)
{
    char d[512];
    snprintf(d, sizeof d, "returned %d, error code %d, errno %d: %s", ret, xenvcpu_last_error_code(),
             xenvcpu_last_errno(), xenvcpu_last_error());
    report(ret >= 0 && xenvcpu_last_error_code() == XENVCPU_OK && xenvcpu_last_error()[0] == '\0', what, d);
}

/* A call that must fail with -1 and error `code`, with a message. */
static void expect_err(int ret, int code, const char *what)
{
    char d[512];
    const char *msg = xenvcpu_last_error();
    snprintf(d, sizeof d, "returned %d, error code %d (want %d): %s", ret, xenvcpu_last_error_code(), code,
             msg ? msg : "(NULL)");
    report(ret == -1 && xenvcpu_last_error_code() == code && msg && msg[0] != '\0', what, d);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The one-byte map of `flags` for `domid`, or -1. */
static int vcpu_map_byte(xenvcpu_conn *c, unsigned domid, unsigned flags)
{
    unsigned char *map = NULL;
    int len = xenvcpu_get_vcpu_map(c, domid, &map, flags);
    int byte = len >= 1 ? map[0] : -1;
    xenvcpu_free(map);
    return byte;
}

/* Waits until the guest's online vCPUs are `want` (a one-byte map); the guest follows
 * availability changes by itself. */
static void wait_online(xenvcpu_conn *c, unsigned domid, int want, const char *what)
{
    double end = now() + WAIT_SECONDS;
    int got;
    while ((got = vcpu_map_byte(c, domid, XENVCPU_VCPU_MAP_ONLINE)) != want && now() < end) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    char d[128];
    snprintf(d, sizeof d, "online map 0x%02x, want 0x%02x after %d s", got, want, WAIT_SECONDS);
    report(got == want, what, d);
}

/* ---- threads --------------------------------------------------------------------------- */

struct worker {
    xenvcpu_conn *c;
    unsigned guest;
    int index;
    pthread_barrier_t *barrier;
    int bad; /* failures seen by the thread, reported by main */
    char why[256];
};

static void worker_fail(struct worker *w, const char *why)
{
    if (!w->bad++)
        snprintf(w->why, sizeof w->why, "thread %d: %s (last error: %s)", w->index, why, xenvcpu_last_error());
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char name[32], *expected;
    snprintf(name, sizeof name, "no-such-domain-%d", w->index);

    /* Each thread pins "its" vCPU of the guest and reads it back, many times. */
    for (int round = 0; round < ROUNDS; round++) {
        unsigned char map = (unsigned char)(1u << ((w->index + round) % HOST_CPUS));
        xenvcpu_vcpu_info info[GUEST_VCPUS];
        unsigned char maps[GUEST_VCPUS];
        unsigned id;
        if (xenvcpu_pin_vcpu(w->c, w->guest, (unsigned)w->index, &map, 1) != 0)
            worker_fail(w, "pin");
        if (xenvcpu_get_vcpus(w->c, w->guest, info, GUEST_VCPUS, maps, 1) != GUEST_VCPUS)
            worker_fail(w, "get_vcpus");
        else if (maps[w->index] != map)
            worker_fail(w, "the map read back is not the one set");
        if (xenvcpu_domain_lookup(w->c, "labguest", &id) != 0 || id != w->guest)
            worker_fail(w, "lookup");
        if (xenvcpu_domain_lookup(w->c, name, &id) != -1 ||
            xenvcpu_last_error_code() != XENVCPU_ERR_NO_DOMAIN || !strstr(xenvcpu_last_error(), name))
            worker_fail(w, "the lookup of a missing domain names it in this thread's error");
    }

    /* The last error is per thread: every thread fails, all wait, thread 0 then succeeds
     * (its error is reset), all wait, and the others still see their own error. */
    xenvcpu_domain_lookup(w->c, name, &(unsigned){0});
    pthread_barrier_wait(w->barrier);
    if (w->index == 0 && xenvcpu_host_cpus(w->c) != HOST_CPUS)
        worker_fail(w, "host_cpus");
    pthread_barrier_wait(w->barrier);
    expected = w->index == 0 ? "" : name;
    if (w->index == 0 ? xenvcpu_last_error()[0] != '\0' : !strstr(xenvcpu_last_error(), expected))
        worker_fail(w, "another thread's call changed this thread's last error");
    if (w->index != 0 && xenvcpu_last_error_code() != XENVCPU_ERR_NO_DOMAIN)
        worker_fail(w, "the error code of this thread's failure is kept");
    return NULL;
}

/* ---- the checks ------------------------------------------------------------------------ */

static void check_open_errors(void)
{
    CHECK(xenvcpu_version() && xenvcpu_version()[0] != '\0', "xenvcpu_version names the version");
    xenvcpu_conn *bad = xenvcpu_open("nosuch:///uri");
    CHECK(bad == NULL, "open: an unknown URI is refused");
    CHECK(xenvcpu_last_error_code() == XENVCPU_ERR_INVALID && strstr(xenvcpu_last_error(), "nosuch:///uri"),
          "open: the error names the URI");
    CHECK(xenvcpu_open("sim:///lab?cpus=0") == NULL && xenvcpu_last_error_code() == XENVCPU_ERR_INVALID,
          "open: a simulated host of 0 CPUs is refused");
    CHECK(xenvcpu_last_errno() == 0, "last_errno: 0 for an error not built from an errno");
    xenvcpu_close(NULL); /* ignored */
    xenvcpu_free(NULL);  /* ignored */
    CHECK(xenvcpu_last_error_code() == XENVCPU_OK, "close(NULL) succeeds and resets the last error");
}

static void check_null_connection(void)
{
    unsigned id;
    xenvcpu_vcpu_info info[1];
    unsigned char map = 1, *mapp = NULL;
    char buf[16];
    expect_err(xenvcpu_domain_lookup(NULL, "0", &id), XENVCPU_ERR_INVALID, "lookup: NULL connection");
    expect_err(xenvcpu_domain_name(NULL, 0, buf, sizeof buf), XENVCPU_ERR_INVALID, "domain_name: NULL connection");
    expect_err(xenvcpu_host_cpus(NULL), XENVCPU_ERR_INVALID, "host_cpus: NULL connection");
    expect_err(xenvcpu_domain_max_vcpus(NULL, 0), XENVCPU_ERR_INVALID, "max_vcpus: NULL connection");
    expect_err(xenvcpu_get_vcpus(NULL, 0, info, 1, NULL, 0), XENVCPU_ERR_INVALID, "get_vcpus: NULL connection");
    expect_err(xenvcpu_pin_vcpu(NULL, 0, 0, &map, 1), XENVCPU_ERR_INVALID, "pin_vcpu: NULL connection");
    expect_err(xenvcpu_set_vcpus(NULL, 1, 2), XENVCPU_ERR_INVALID, "set_vcpus: NULL connection");
    expect_err(xenvcpu_get_vcpu_map(NULL, 0, &mapp, 0), XENVCPU_ERR_INVALID, "get_vcpu_map: NULL connection");
    CHECK(mapp == NULL, "get_vcpu_map: *cpumap is NULL on error");
    expect_err(xenvcpu_set_vcpu_state(NULL, 1, 1, 1, 0), XENVCPU_ERR_INVALID, "set_vcpu_state: NULL connection");
}

static unsigned check_lookup(xenvcpu_conn *c)
{
    unsigned id = 12345, guest = 0;
    expect_ok(xenvcpu_domain_lookup(c, "labguest", &guest), "lookup: labguest by name");
    CHECK(guest != 0, "lookup: labguest is not Domain-0");
    expect_ok(xenvcpu_domain_lookup(c, "Domain-0", &id), "lookup: Domain-0 by name");
    CHECK(id == 0, "lookup: Domain-0 is domain 0");
    char text[16];
    snprintf(text, sizeof text, "%u", guest);
    expect_ok(xenvcpu_domain_lookup(c, text, &id), "lookup: labguest by id");
    CHECK(id == guest, "lookup: by id gives the id");
    id = 777;
    expect_err(xenvcpu_domain_lookup(c, "no-such-domain", &id), XENVCPU_ERR_NO_DOMAIN, "lookup: a missing name");
    CHECK(id == 777, "lookup: *domid untouched on error");
    expect_err(xenvcpu_domain_lookup(c, "32000", &id), XENVCPU_ERR_NO_DOMAIN, "lookup: a missing id");
    expect_err(xenvcpu_domain_lookup(c, "99999999999", &id), XENVCPU_ERR_NO_DOMAIN, "lookup: an id past 32 bits");
    expect_err(xenvcpu_domain_lookup(c, "", &id), XENVCPU_ERR_INVALID, "lookup: an empty string");
    expect_err(xenvcpu_domain_lookup(c, NULL, &id), XENVCPU_ERR_INVALID, "lookup: NULL name");
    expect_err(xenvcpu_domain_lookup(c, "labguest", NULL), XENVCPU_ERR_INVALID, "lookup: NULL domid");
    return guest;
}

static void check_names_and_sizes(xenvcpu_conn *c, unsigned guest)
{
    char buf[32];
    expect_ok(xenvcpu_domain_name(c, 0, buf, sizeof buf), "domain_name: Domain-0");
    CHECK(strcmp(buf, "Domain-0") == 0, "domain_name: Domain-0's name");
    int len = xenvcpu_domain_name(c, guest, buf, 9); /* "labguest" + NUL: exactly enough */
    expect_ok(len, "domain_name: a buffer of exactly the name and its NUL");
    CHECK(len == 8 && strcmp(buf, "labguest") == 0, "domain_name: returns the length and the name");
    memset(buf, 'x', sizeof buf);
    expect_err(xenvcpu_domain_name(c, guest, buf, 8), XENVCPU_ERR_BUFFER, "domain_name: a short buffer");
    CHECK(buf[0] == 'x' && buf[7] == 'x', "domain_name: nothing written into a short buffer");
    expect_err(xenvcpu_domain_name(c, guest, buf, 0), XENVCPU_ERR_BUFFER, "domain_name: an empty buffer");
    expect_err(xenvcpu_domain_name(c, guest, NULL, 32), XENVCPU_ERR_INVALID, "domain_name: NULL buffer");
    expect_err(xenvcpu_domain_name(c, NO_DOMID, buf, sizeof buf), XENVCPU_ERR_NO_DOMAIN, "domain_name: bad domain");

    int cpus = xenvcpu_host_cpus(c);
    expect_ok(cpus, "host_cpus");
    CHECK(cpus == HOST_CPUS, "host_cpus: the lab's 4 CPUs");
    int max = xenvcpu_domain_max_vcpus(c, guest);
    expect_ok(max, "max_vcpus: labguest");
    CHECK(max == GUEST_VCPUS, "max_vcpus: labguest has 4");
    expect_err(xenvcpu_domain_max_vcpus(c, NO_DOMID), XENVCPU_ERR_NO_DOMAIN, "max_vcpus: bad domain");
}

static void check_get_vcpus(xenvcpu_conn *c, unsigned guest)
{
    xenvcpu_vcpu_info info[8];
    unsigned char maps[8 * 4];
    memset(info, 0xee, sizeof info);
    memset(maps, 0xee, sizeof maps);
    int n = xenvcpu_get_vcpus(c, guest, info, 8, maps, 1);
    expect_ok(n, "get_vcpus: labguest, 8 slots of 1 byte");
    CHECK(n == GUEST_VCPUS, "get_vcpus: returns the number filled (4), not maxinfo");
    for (int v = 0; v < n && v < 8; v++) {
        char what[96];
        snprintf(what, sizeof what, "get_vcpus: vCPU %d number, state, cpu, map", v);
        int online = v < 2;
        CHECK(info[v].number == (unsigned)v &&
                  (online ? (info[v].state == XENVCPU_VCPU_RUNNING || info[v].state == XENVCPU_VCPU_BLOCKED)
                          : info[v].state == XENVCPU_VCPU_OFFLINE) &&
                  (online ? info[v].cpu >= 0 && info[v].cpu < HOST_CPUS : info[v].cpu == -1) &&
                  maps[v] != 0 && (maps[v] & ~0x0f) == 0,
              what);
    }
    CHECK(maps[4] == 0 && maps[7] == 0, "get_vcpus: the maps past the vCPUs filled are zeroed");
    CHECK(info[4].number == 0xeeeeeeeeu, "get_vcpus: the info entries past n are untouched");

    memset(maps, 0xee, sizeof maps);
    n = xenvcpu_get_vcpus(c, guest, info, 2, maps, 4);
    expect_ok(n, "get_vcpus: maxinfo 2, maps of 4 bytes");
    CHECK(n == 2, "get_vcpus: maxinfo below the vCPUs gives maxinfo");
    CHECK(maps[0] != 0 && maps[1] == 0 && maps[2] == 0 && maps[3] == 0 && maps[5] == 0 && maps[7] == 0,
          "get_vcpus: a map wider than the host is zero past it");
    CHECK(maps[8] == 0xee, "get_vcpus: nothing written past maxinfo * maplen");

    n = xenvcpu_get_vcpus(c, 0, info, 8, NULL, 0);
    expect_ok(n, "get_vcpus: Domain-0 without maps");
    CHECK(n == 4, "get_vcpus: Domain-0 has 4 vCPUs");

    expect_err(xenvcpu_get_vcpus(c, guest, NULL, 8, NULL, 0), XENVCPU_ERR_INVALID, "get_vcpus: NULL info");
    expect_err(xenvcpu_get_vcpus(c, guest, info, 0, NULL, 0), XENVCPU_ERR_INVALID, "get_vcpus: maxinfo 0");
    expect_err(xenvcpu_get_vcpus(c, guest, info, -1, NULL, 0), XENVCPU_ERR_INVALID, "get_vcpus: maxinfo < 0");
    expect_err(xenvcpu_get_vcpus(c, guest, info, 8, NULL, 1), XENVCPU_ERR_INVALID, "get_vcpus: NULL maps, maplen 1");
    expect_err(xenvcpu_get_vcpus(c, guest, info, 8, maps, 0), XENVCPU_ERR_INVALID, "get_vcpus: maps, maplen 0");
    expect_err(xenvcpu_get_vcpus(c, guest, info, 8, maps, -1), XENVCPU_ERR_INVALID, "get_vcpus: maplen < 0");
    expect_err(xenvcpu_get_vcpus(c, NO_DOMID, info, 8, NULL, 0), XENVCPU_ERR_NO_DOMAIN, "get_vcpus: bad domain");
}

static void check_pin(xenvcpu_conn *c, unsigned guest)
{
    unsigned char map = 0x05, maps[GUEST_VCPUS];
    xenvcpu_vcpu_info info[GUEST_VCPUS];
    expect_ok(xenvcpu_pin_vcpu(c, guest, 1, &map, 1), "pin_vcpu: labguest vCPU 1 to CPUs 0,2");
    expect_ok(xenvcpu_get_vcpus(c, guest, info, GUEST_VCPUS, maps, 1), "get_vcpus after the pin");
    CHECK(maps[1] == 0x05, "pin_vcpu: the map reads back");
    map = 0x08;
    expect_ok(xenvcpu_pin_vcpu(c, guest, 3, &map, 1), "pin_vcpu: an offline vCPU can be pinned");
    unsigned char wide[4] = {0x03, 0, 0, 0};
    expect_ok(xenvcpu_pin_vcpu(c, guest, 2, wide, 4), "pin_vcpu: a map wider than the host, zero past it");
    expect_ok(xenvcpu_get_vcpus(c, guest, info, GUEST_VCPUS, maps, 1), "get_vcpus after the pins");
    CHECK(maps[2] == 0x03 && maps[3] == 0x08, "pin_vcpu: the wide map and the offline vCPU's read back");

    unsigned char beyond = 0x10; /* CPU 4: the host has 0-3 */
    expect_err(xenvcpu_pin_vcpu(c, guest, 1, &beyond, 1), XENVCPU_ERR_CPUMAP, "pin_vcpu: a CPU the host lacks");
    unsigned char far[2] = {0x01, 0x02}; /* CPUs 0 and 9 */
    expect_err(xenvcpu_pin_vcpu(c, guest, 1, far, 2), XENVCPU_ERR_CPUMAP, "pin_vcpu: CPU 9 in a 2-byte map");
    unsigned char none = 0;
    expect_err(xenvcpu_pin_vcpu(c, guest, 1, &none, 1), XENVCPU_ERR_CPUMAP, "pin_vcpu: an empty map");
    expect_ok(xenvcpu_get_vcpus(c, guest, info, GUEST_VCPUS, maps, 1), "get_vcpus after the refused pins");
    CHECK(maps[1] == 0x05, "pin_vcpu: a refused map changes nothing");
    map = 0x0f;
    expect_err(xenvcpu_pin_vcpu(c, guest, GUEST_VCPUS, &map, 1), XENVCPU_ERR_VCPU, "pin_vcpu: vCPU out of range");
    expect_err(xenvcpu_pin_vcpu(c, guest, 4000000000u, &map, 1), XENVCPU_ERR_VCPU, "pin_vcpu: a huge vCPU");
    expect_err(xenvcpu_pin_vcpu(c, guest, 0, NULL, 1), XENVCPU_ERR_INVALID, "pin_vcpu: NULL map");
    expect_err(xenvcpu_pin_vcpu(c, guest, 0, &map, 0), XENVCPU_ERR_INVALID, "pin_vcpu: maplen 0");
    expect_err(xenvcpu_pin_vcpu(c, guest, 0, &map, -3), XENVCPU_ERR_INVALID, "pin_vcpu: maplen < 0");
    expect_err(xenvcpu_pin_vcpu(c, NO_DOMID, 0, &map, 1), XENVCPU_ERR_NO_DOMAIN, "pin_vcpu: bad domain");
}

static void check_vcpu_maps(xenvcpu_conn *c, unsigned guest)
{
    unsigned char *map = (unsigned char *)1;
    int len = xenvcpu_get_vcpu_map(c, guest, &map, XENVCPU_VCPU_MAP_POSSIBLE);
    expect_ok(len, "get_vcpu_map: possible");
    CHECK(len == 1 && map && map[0] == 0x0f, "get_vcpu_map: possible is vCPUs 0-3, one byte");
    xenvcpu_free(map);
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_ONLINE) == 0x03, "get_vcpu_map: online (the default) 0-1");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_ONLINABLE) == 0x0c, "get_vcpu_map: onlinable 2-3");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_OFFLINABLE) == 0x02, "get_vcpu_map: offlinable 1");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_REQUESTED) == 0x03, "get_vcpu_map: requested 0-1");
    CHECK(vcpu_map_byte(c, 0, XENVCPU_VCPU_MAP_ONLINE) == 0x0f, "get_vcpu_map: Domain-0 online 0-3");
    /* Domain-0 has no availability nodes unless a tool wrote them (the lab's `xenvcpu set
     * Domain-0` tests do, and leave every vCPU requested online). */
    int dom0_requested = vcpu_map_byte(c, 0, XENVCPU_VCPU_MAP_REQUESTED);
    CHECK(dom0_requested == 0x00 || dom0_requested == 0x0f,
          "get_vcpu_map: Domain-0's requested map is empty (no availability nodes) or every vCPU");

    map = (unsigned char *)1;
    expect_err(xenvcpu_get_vcpu_map(c, guest, &map, XENVCPU_VCPU_MAP_POSSIBLE | XENVCPU_VCPU_MAP_ONLINABLE),
               XENVCPU_ERR_INVALID, "get_vcpu_map: two maps at once");
    CHECK(map == NULL, "get_vcpu_map: *cpumap NULL on error");
    expect_err(xenvcpu_get_vcpu_map(c, guest, &map, 1u << 20), XENVCPU_ERR_INVALID, "get_vcpu_map: unknown flag");
    expect_err(xenvcpu_get_vcpu_map(c, guest, NULL, 0), XENVCPU_ERR_INVALID, "get_vcpu_map: NULL cpumap");
    expect_err(xenvcpu_get_vcpu_map(c, NO_DOMID, &map, 0), XENVCPU_ERR_NO_DOMAIN, "get_vcpu_map: bad domain");
}

static void check_availability(xenvcpu_conn *c, unsigned guest)
{
    expect_ok(xenvcpu_set_vcpus(c, guest, 3), "set_vcpus: labguest to 3");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_REQUESTED) == 0x07, "set_vcpus: requested 0-2 at once");
    wait_online(c, guest, 0x07, "set_vcpus: the guest brings vCPU 2 online");
    xenvcpu_vcpu_info info[GUEST_VCPUS];
    expect_ok(xenvcpu_get_vcpus(c, guest, info, GUEST_VCPUS, NULL, 0), "get_vcpus after set_vcpus");
    CHECK(info[2].state != XENVCPU_VCPU_OFFLINE && info[2].cpu >= 0 && info[3].state == XENVCPU_VCPU_OFFLINE &&
              info[3].cpu == -1,
          "get_vcpus: vCPU 2 online with a CPU, vCPU 3 offline with cpu -1");

    expect_ok(xenvcpu_set_vcpu_state(c, guest, 3, 1, 0), "set_vcpu_state: vCPU 3 online");
    wait_online(c, guest, 0x0f, "set_vcpu_state: the guest brings vCPU 3 online");
    expect_ok(xenvcpu_set_vcpu_state(c, guest, 1, 0, 0), "set_vcpu_state: vCPU 1 offline (a sparse set)");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_REQUESTED) == 0x0d, "set_vcpu_state: requested 0,2-3");
    wait_online(c, guest, 0x0d, "set_vcpu_state: the guest takes vCPU 1 offline");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_OFFLINABLE) == 0x0c, "get_vcpu_map: offlinable 2-3");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_ONLINABLE) == 0x02, "get_vcpu_map: onlinable 1");

    expect_err(xenvcpu_set_vcpu_state(c, guest, 0, 0, 0), XENVCPU_ERR_VCPU, "set_vcpu_state: vCPU 0 offline");
    expect_err(xenvcpu_set_vcpu_state(c, guest, -1, 1, 0), XENVCPU_ERR_VCPU, "set_vcpu_state: vCPU -1");
    expect_err(xenvcpu_set_vcpu_state(c, guest, GUEST_VCPUS, 1, 0), XENVCPU_ERR_VCPU, "set_vcpu_state: vCPU 4");
    expect_err(xenvcpu_set_vcpu_state(c, guest, 1, 1, 1), XENVCPU_ERR_INVALID, "set_vcpu_state: flags not 0");
    expect_err(xenvcpu_set_vcpu_state(c, NO_DOMID, 1, 1, 0), XENVCPU_ERR_NO_DOMAIN, "set_vcpu_state: bad domain");
    expect_err(xenvcpu_set_vcpus(c, guest, 0), XENVCPU_ERR_VCPU, "set_vcpus: 0");
    expect_err(xenvcpu_set_vcpus(c, guest, GUEST_VCPUS + 1), XENVCPU_ERR_VCPU, "set_vcpus: more than the maximum");
    expect_err(xenvcpu_set_vcpus(c, NO_DOMID, 2), XENVCPU_ERR_NO_DOMAIN, "set_vcpus: bad domain");
    CHECK(vcpu_map_byte(c, guest, XENVCPU_VCPU_MAP_REQUESTED) == 0x0d, "refused changes change nothing");

    unsigned hvm;
    if (xenvcpu_domain_lookup(c, "hvmguest", &hvm) == 0) {
        expect_err(xenvcpu_set_vcpus(c, hvm, 1), XENVCPU_ERR_UNSUPPORTED, "set_vcpus: an HVM guest");
        expect_err(xenvcpu_set_vcpu_state(c, hvm, 1, 0, 0), XENVCPU_ERR_UNSUPPORTED, "set_vcpu_state: an HVM guest");
    }

    expect_ok(xenvcpu_set_vcpus(c, guest, 2), "set_vcpus: labguest back to 2");
    wait_online(c, guest, 0x03, "set_vcpus: the guest is back to vCPUs 0-1");
}

static void check_threads(xenvcpu_conn *c, unsigned guest)
{
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    int started = 1;
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.c = c, .guest = guest, .index = i, .barrier = &barrier};
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) {
            started = 0;
            /* The barrier needs every thread: without them the others would wait forever. */
            fprintf(stderr, "pthread_create failed\n");
            exit(2);
        }
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < THREADS; i++) {
        char what[96];
        snprintf(what, sizeof what, "threads: thread %d (%d rounds of pin, get_vcpus, lookups)", i, ROUNDS);
        report(started && workers[i].bad == 0, what, workers[i].why);
    }
    /* Each thread's last pin is its vCPU's map now. */
    unsigned char maps[GUEST_VCPUS];
    xenvcpu_vcpu_info info[GUEST_VCPUS];
    int ok = xenvcpu_get_vcpus(c, guest, info, GUEST_VCPUS, maps, 1) == GUEST_VCPUS;
    for (int i = 0; i < THREADS && ok; i++)
        ok = maps[i] == (1u << ((i + ROUNDS - 1) % HOST_CPUS));
    CHECK(ok, "threads: every vCPU keeps its thread's last pin");
}

static void restore_pins(xenvcpu_conn *c, unsigned guest)
{
    unsigned char all = 0x0f;
    int ok = 1;
    for (unsigned v = 0; v < GUEST_VCPUS; v++)
        ok &= xenvcpu_pin_vcpu(c, guest, v, &all, 1) == 0;
    CHECK(ok, "restore: every labguest vCPU on every CPU");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s sim:///lab | -\n", argv[0]);
        return 2;
    }
    const char *uri = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
    printf("libxenvcpu %s, %s\n", xenvcpu_version(), uri ? uri : "this host");

    check_open_errors();
    check_null_connection();
    xenvcpu_conn *c = xenvcpu_open(uri);
    if (!c) {
        printf("FAILED - open %s: %s (errno %d)\ncapi: %d passed, %d failed\n", argv[1], xenvcpu_last_error(),
               xenvcpu_last_errno(), passed, failed + 1);
        return 1;
    }
    expect_ok(0, "open: the connection");
    unsigned guest = check_lookup(c);
    check_names_and_sizes(c, guest);
    check_get_vcpus(c, guest);
    check_vcpu_maps(c, guest);
    check_pin(c, guest);
    check_availability(c, guest);
    check_threads(c, guest);
    restore_pins(c, guest);
    xenvcpu_close(c);

    if (uri) {
        /* A host larger than a caller's fixed maps: libvirt's 32-byte maps (256 CPUs) on a
         * 300-CPU host are truncated, not refused. */
        xenvcpu_conn *big = xenvcpu_open("sim:///lab?cpus=300");
        CHECK(big != NULL, "open: a simulated host of 300 CPUs");
        if (big) {
            CHECK(xenvcpu_host_cpus(big) == 300, "host_cpus: 300");
            unsigned char pin[38] = {0};
            pin[0] = 0x02;       /* CPU 1 */
            pin[31] = 0x80;      /* CPU 255 */
            pin[37] = 0x08;      /* CPU 299 */
            expect_ok(xenvcpu_pin_vcpu(big, 0, 1, pin, sizeof pin), "pin_vcpu: CPUs 1,255,299 of 300");
            xenvcpu_vcpu_info info[4];
            unsigned char maps[4 * 32];
            int n = xenvcpu_get_vcpus(big, 0, info, 4, maps, 32);
            expect_ok(n, "get_vcpus: 32-byte maps on a 300-CPU host");
            CHECK(n == 4 && maps[32] == 0x02 && maps[32 + 31] == 0x80, "get_vcpus: the map is truncated at 256 CPUs");
            CHECK(maps[0] == 0xff && maps[31] == 0xff, "get_vcpus: an all-CPU map shows CPUs 0-255");
            xenvcpu_close(big);
        }
    }

    printf("capi: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
