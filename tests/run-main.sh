#!/usr/bin/env bash
# The main job: `xenvcpu info` and `xenvcpu list` against a real Xen.
#
# In a privileged dom0 (where /dev/xen/privcmd exists) it runs the CLI on this host;
# anywhere else it boots the lab (a real Xen in QEMU with a PV guest: Debian 12's Xen 4.17
# by default, Debian 13's Xen 4.20 with `--xen 4.20` or XENVCPU_XEN=4.20) and runs the CLI
# in its dom0. Extra arguments replace the default commands, e.g.
#   bash tests/run-main.sh 'xenvcpu list labguest; xl vcpu-list'
#   bash tests/run-main.sh --xen 4.20
set -euo pipefail
cd "$(dirname "$0")/.."

xen=${XENVCPU_XEN:-4.17}
if [ "${1:-}" = --xen ]; then
    xen=${2:?--xen needs a release: 4.17 or 4.20}
    shift 2
fi
case $xen in
4.17 | 4.20) ;;
*) echo "run-main: Xen $xen: the lab has 4.17 and 4.20" >&2; exit 2 ;;
esac
commands=${1:-'xenvcpu info && xenvcpu list'}

if [ -e /dev/xen/privcmd ] && [ -z "${XENVCPU_FORCE_LAB:-}" ]; then
    cargo build --release --bin xenvcpu
    PATH="$PWD/${CARGO_TARGET_DIR:-target}/release:$PATH" sh -c "$commands"
else
    echo "no Xen host here (/dev/xen/privcmd is absent): running in the lab (Xen $xen)" >&2
    exec bash tests/lab/lab.sh --xen "$xen" run -- "$commands"
fi
