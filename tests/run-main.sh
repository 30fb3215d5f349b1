#!/usr/bin/env bash
# The main job: `xenvcpu info` and `xenvcpu list` against a real Xen.
#
# In a privileged dom0 (where /dev/xen/privcmd exists) it runs the CLI on this host;
# anywhere else it boots the lab (a real Xen 4.17 in QEMU with a PV guest) and runs
# the CLI in its dom0. Extra arguments replace the default commands, e.g.
#   bash tests/run-main.sh 'xenvcpu list labguest; xl vcpu-list'
set -euo pipefail
cd "$(dirname "$0")/.."

commands=${1:-'xenvcpu info && xenvcpu list'}

if [ -e /dev/xen/privcmd ] && [ -z "${XENVCPU_FORCE_LAB:-}" ]; then
    cargo build --release --bin xenvcpu
    PATH="$PWD/${CARGO_TARGET_DIR:-target}/release:$PATH" sh -c "$commands"
else
    echo "no Xen host here (/dev/xen/privcmd is absent): running in the lab" >&2
    exec bash tests/lab/lab.sh run -- "$commands"
fi
