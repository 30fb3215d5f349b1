#!/usr/bin/env bash
# Installs the C library built by cargo: libxenvcpu.so.0 (with the libxenvcpu.so link),
# libxenvcpu.a, xenvcpu.h and xenvcpu.pc.
#
#   cargo build --release -p xenvcpu-capi
#   bash capi/install.sh [PREFIX [BUILD_DIR]]
#
# PREFIX defaults to /usr/local; BUILD_DIR to ${CARGO_TARGET_DIR:-target}/release. Files go
# to PREFIX/lib (or $LIBDIR), PREFIX/include and PREFIX/lib/pkgconfig; $DESTDIR is honoured.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:-/usr/local}
build=${2:-${CARGO_TARGET_DIR:-$here/../target}/release}
libdir=${LIBDIR:-$prefix/lib}
dest=${DESTDIR:-}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/Cargo.toml" | head -n 1)
[[ -n $version ]] || { echo "install.sh: no version in $here/Cargo.toml" >&2; exit 1; }
for f in libxenvcpu.so libxenvcpu.a; do
    [[ -f $build/$f ]] || { echo "install.sh: $build/$f is missing: cargo build --release -p xenvcpu-capi" >&2; exit 1; }
done
install -d "$dest$libdir/pkgconfig" "$dest$prefix/include"
install -m 755 "$build/libxenvcpu.so" "$dest$libdir/libxenvcpu.so.$version"
ln -sf "libxenvcpu.so.$version" "$dest$libdir/libxenvcpu.so.0"
ln -sf libxenvcpu.so.0 "$dest$libdir/libxenvcpu.so"
install -m 644 "$build/libxenvcpu.a" "$dest$libdir/libxenvcpu.a"
install -m 644 "$here/include/xenvcpu.h" "$dest$prefix/include/xenvcpu.h"
sed -e "s|@PREFIX@|$prefix|; s|@LIBDIR@|$libdir|; s|@VERSION@|$version|" "$here/xenvcpu.pc.in" \
    >"$dest$libdir/pkgconfig/xenvcpu.pc"
echo "installed libxenvcpu $version under $dest$prefix"
