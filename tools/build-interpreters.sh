#!/usr/bin/env bash
# `make interpreters`: CPython 3.13 twice from one source, the GIL build and the free-threaded build
# (--disable-gil, same flags otherwise), so that the free-threading tax is measured version for version.
#
# The source is Debian trixie's python3.13 source package (its pristine upstream tarball, checked by apt
# against trixie's signed Sources), fetched with a private apt configuration: the machine's own apt
# sources are not touched. The builds go to a machine-wide cache that every clone finds
# ($PARBENCH_INTERPRETERS_CACHE, else ~/.cache/parbench/interpreters); each gets a virtual environment in
# this project's interpreters/ (git ignores it) with what a run's driver and workers import.
# Done builds and environments are kept: a second call takes seconds. About 2.5 min per build on 2 cores.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

SUITE=trixie  # its python3.13 (3.13.5 on 2026-12-03); the builds record the version they were made from
MIRROR=${PARBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${PARBENCH_INTERPRETERS_CACHE:-$HOME/.cache/parbench/interpreters}
HERE=$PWD/interpreters
# What a run imports on these interpreters. numpy 2.5 has no cp313t wheel; spaCy's stack has none
# either (from source it takes ~8 min and re-enables the GIL), Ray no free-threaded wheel at all: those
# runs are recorded as skipped. interpreters-pep-734 is the subinterpreters backport for 3.13.
RUN_PACKAGES=(numpy==2.4.6 psutil==7.2.2 threadpoolctl joblib==1.6.0 cloudpickle interpreters-pep-734==0.5.0)
# What the build needs from Debian (bookworm's own packages).
BUILD_DEPS=(build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev
    libreadline-dev uuid-dev libgdbm-dev libncurses-dev libexpat1-dev)

say() { echo "interpreters: $*"; }

missing=()
for p in "${BUILD_DEPS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        say "installing build dependencies: ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "needs these Debian packages (as root: apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

source_tree() {  # prints the unpacked source folder, fetching the source package once
    local src=$CACHE/src
    if ! compgen -G "$src/Python-3.13.*/configure" >/dev/null; then
        mkdir -p "$src/apt/lists/partial" "$src/apt/cache/archives/partial"
        echo "deb-src $MIRROR $SUITE main" >"$src/apt/sources.list"
        local apt=(-o Dir::Etc::sourcelist="$src/apt/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$src/apt/lists"
            -o Dir::Cache="$src/apt/cache" -o APT::Sandbox::User=root)
        apt-get "${apt[@]}" update -qq >&2
        (cd "$src" && apt-get "${apt[@]}" source --download-only python3.13 >&2)
        tar -xJf "$src"/python3.13_*.orig.tar.xz -C "$src"
    fi
    compgen -G "$src/Python-3.13.*" | head -1
}

build() {  # build NAME [configure flags...]: CPython into $CACHE/NAME unless it is there
    local name=$1
    shift
    local prefix=$CACHE/$name
    if [ -x "$prefix/bin/python3" ] && [ -f "$prefix/.built" ]; then
        say "$name: built already ($prefix)"
        return
    fi
    local tree work
    tree=$(source_tree)
    work=$(mktemp -d)
    say "$name: configure, make -j$(nproc), make install (log: $work/build.log)"
    local start=$SECONDS
    rm -rf "$prefix"
    (cd "$work" && "$tree/configure" --prefix="$prefix" --with-ensurepip=install "$@" &&
        make -j"$(nproc)" && make install) >"$work/build.log" 2>&1 || {
        tail -30 "$work/build.log" >&2
        say "$name: the build failed; its whole log is $work/build.log" >&2
        exit 1
    }
    rm -rf "$prefix/lib/python3.13"*/test  # the test suite: 140 MiB no run needs
    echo "configure $* (CPython ${tree##*/Python-}, Debian $SUITE source), $((SECONDS - start)) s" >"$prefix/.built"
    rm -rf "$work"
    say "$name: built in $((SECONDS - start)) s"
}

environment() {  # environment NAME PYTHON: a virtual environment interpreters/NAME with RUN_PACKAGES
    local name=$1 python=$2
    if [ -f "$HERE/$name/.installed" ] && [ "$(cat "$HERE/$name/.installed")" = "${RUN_PACKAGES[*]}" ]; then
        say "$name: environment ready ($HERE/$name)"
        return
    fi
    rm -rf "${HERE:?}/$name"
    "$python" -m venv "$HERE/$name"
    "$HERE/$name/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "${RUN_PACKAGES[@]}"
    echo "${RUN_PACKAGES[*]}" >"$HERE/$name/.installed"
    say "$name: $("$HERE/$name/bin/python" -c 'import sys, sysconfig; print(sys.version.split()[0], "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL", "build; GIL enabled now:", getattr(sys, "_is_gil_enabled", lambda: True)())')"
}

build cpython-3.13
build cpython-3.13t --disable-gil
environment 3.13 "$CACHE/cpython-3.13/bin/python3.13"
environment 3.13t "$CACHE/cpython-3.13t/bin/python3.13t"
