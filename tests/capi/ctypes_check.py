#!/usr/bin/env python3
"""libxenvcpu from Python's ctypes, with no C compiler: open the simulated lab, look up
labguest, read its vCPUs and maps, pin a vCPU, read a vCPU map, and an error path.

    python3 tests/capi/ctypes_check.py PATH/TO/libxenvcpu.so.0

Prints what it saw and a last line "ctypes: ok"; exits 1 on the first failed check.
"""
import ctypes
import sys


class VcpuInfo(ctypes.Structure):
    """xenvcpu_vcpu_info (libvirt's virVcpuInfo)."""
    _fields_ = [("number", ctypes.c_uint), ("state", ctypes.c_int),
                ("cpu_time", ctypes.c_ulonglong), ("cpu", ctypes.c_int)]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}: {lib.xenvcpu_last_error().decode()}")
        sys.exit(1)


lib = ctypes.CDLL(sys.argv[1])
conn_p = ctypes.c_void_p
lib.xenvcpu_open.restype = conn_p
lib.xenvcpu_open.argtypes = [ctypes.c_char_p]
lib.xenvcpu_close.argtypes = [conn_p]
lib.xenvcpu_last_error.restype = ctypes.c_char_p
lib.xenvcpu_version.restype = ctypes.c_char_p
lib.xenvcpu_domain_lookup.argtypes = [conn_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint)]
lib.xenvcpu_get_vcpus.argtypes = [conn_p, ctypes.c_uint, ctypes.POINTER(VcpuInfo), ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int]
lib.xenvcpu_pin_vcpu.argtypes = [conn_p, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int]
lib.xenvcpu_get_vcpu_map.argtypes = [conn_p, ctypes.c_uint, ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
                                     ctypes.c_uint]
lib.xenvcpu_free.argtypes = [ctypes.c_void_p]

print(f"libxenvcpu {lib.xenvcpu_version().decode()}")
conn = lib.xenvcpu_open(b"sim:///lab")
check(conn, "open sim:///lab")

domid = ctypes.c_uint(0)
check(lib.xenvcpu_domain_lookup(conn, b"labguest", ctypes.byref(domid)) == 0, "lookup labguest")
print(f"labguest is domain {domid.value}")

check(lib.xenvcpu_domain_lookup(conn, b"nosuch", ctypes.byref(domid)) == -1, "lookup of a missing domain fails")
check(lib.xenvcpu_last_error_code() == 2 and b"nosuch" in lib.xenvcpu_last_error(),
      "the error is XENVCPU_ERR_NO_DOMAIN and names the domain")
print(f"error path: {lib.xenvcpu_last_error().decode()}")
check(lib.xenvcpu_domain_lookup(conn, b"labguest", ctypes.byref(domid)) == 0, "lookup labguest again")

one = (ctypes.c_ubyte * 1)(0x06)  # CPUs 1-2
check(lib.xenvcpu_pin_vcpu(conn, domid, 1, one, 1) == 0, "pin vCPU 1 to CPUs 1-2")

infos = (VcpuInfo * 8)()
maps = (ctypes.c_ubyte * 8)()
n = lib.xenvcpu_get_vcpus(conn, domid, infos, 8, maps, 1)
check(n == 4, "get_vcpus fills 4")
for i in infos[:n]:
    print(f"vCPU {i.number}: state {i.state} cpu {i.cpu} map 0x{maps[i.number]:02x}")
check([i.state for i in infos[:n]][2:] == [0, 0] and infos[3].cpu == -1, "vCPUs 2-3 offline, cpu -1")
check(maps[1] == 0x06, "vCPU 1's map reads back")

mp = ctypes.POINTER(ctypes.c_ubyte)()
length = lib.xenvcpu_get_vcpu_map(conn, domid, ctypes.byref(mp), 0)
check(length == 1 and mp[0] == 0x03, "the online vCPU map is 0-1")
lib.xenvcpu_free(mp)

lib.xenvcpu_close(conn)
print("ctypes: ok")
