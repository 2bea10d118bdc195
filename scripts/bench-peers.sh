#!/usr/bin/env bash
# Runs benches/peers.rs: our routes side by side with pingora-load-balancing's
# `select` (round robin and Ketama consistent hashing), in one run.
#
# pingora-load-balancing builds zlib-ng through `cmake` (libz-ng-sys) and zstd
# through a C compiler, so this installs `cmake`, a C/C++ toolchain and
# `pkg-config` with apt-get when one is missing (Debian/Ubuntu; needs root or
# sudo). Extra arguments go to criterion, e.g. a filter:
#   scripts/bench-peers.sh consistent_hash
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)

if ((${#missing[@]})); then
    echo "==> installing ${missing[*]} (needed to build pingora-load-balancing)"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "error: need root or sudo to install: ${missing[*]}" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || {
        echo "error: no apt-get; install these yourself: ${missing[*]}" >&2
        exit 1
    }
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

echo "==> cargo bench --features bench-peers --bench peers"
cargo bench --features bench-peers --bench peers -- "$@"
