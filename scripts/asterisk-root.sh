#!/usr/bin/env bash
# Build (once) and manage the Asterisk root: Debian sid's Asterisk 22 in a chroot, the
# same packages the production Dockerfile installs. The root lives outside the work tree
# and is reused by every later run; delete it to rebuild.
#
#   asterisk-root.sh build    build the root if it is missing (about a minute)
#   asterisk-root.sh start    bind-mount our configs and recordings, start Asterisk, wait for boot
#   asterisk-root.sh stop     stop Asterisk and unmount
#   asterisk-root.sh rx CMD   run an Asterisk CLI command
#   asterisk-root.sh sipp ARGS  run SIPp 3.8 from the root (paths are inside the root)
set -euo pipefail
# `asterisk -rx` waits on a standard input that is neither a terminal nor empty.
exec < /dev/null

ROOT=${CALLCENTER_ASTERISK_ROOT:-/var/cache/callcenter/asterisk-root}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CONF_SRC=${CALLCENTER_ASTERISK_CONF:-$HERE/asterisk}
SPOOL=${CALLCENTER_SPOOL:-$HERE/var}
PACKAGES="asterisk asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm sip-tester"

die() { echo "asterisk-root: $*" >&2; exit 1; }

build() {
    if [ -x "$ROOT/usr/sbin/asterisk" ] && [ -x "$ROOT/usr/bin/sipp" ] && [ -f "$ROOT/.callcenter-ready" ]; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "building the Asterisk root needs root"
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    mkdir -p "$(dirname "$ROOT")"
    if [ ! -f "$ROOT.tmp/.debootstrapped" ]; then
        rm -rf "$ROOT.tmp"
        echo "asterisk-root: debootstrap sid into $ROOT (once; cached afterwards)"
        debootstrap --variant=minbase sid "$ROOT.tmp" >/dev/null || die "debootstrap failed"
        touch "$ROOT.tmp/.debootstrapped"
    fi
    cp /etc/resolv.conf "$ROOT.tmp/etc/resolv.conf"
    # sid's Release file can look expired to a machine whose clock runs ahead of the mirror.
    local apt="apt-get -o Acquire::Check-Valid-Until=false"
    chroot "$ROOT.tmp" $apt update -qq || die "apt-get update inside the root failed"
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT.tmp" $apt install -y -qq --no-install-recommends $PACKAGES >/dev/null \
        || die "installing $PACKAGES inside the root failed"
    # Asterisk looks up the host name and the DNS root on every call: answer both locally.
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$(hostname)" > "$ROOT.tmp/etc/hosts"
    echo 'nameserver 127.0.0.1' > "$ROOT.tmp/etc/resolv.conf"
    touch "$ROOT.tmp/.callcenter-ready"
    mv "$ROOT.tmp" "$ROOT"
}

is_mounted() { mountpoint -q "$1"; }

same_dir() { [ "$(stat -c %d:%i "$1" 2>/dev/null)" = "$(stat -c %d:%i "$2" 2>/dev/null)" ]; }

# Bind $1 on $2; a mount of another folder left there (by a run that crashed) is replaced.
bind() {
    if is_mounted "$2"; then
        same_dir "$1" "$2" && return 0
        umount -l "$2"
    fi
    mount --bind "$1" "$2"
}

mounts() {
    mkdir -p "$SPOOL/recordings" "$SPOOL/prompts" "$SPOOL/sipp" "$ROOT/etc/callcenter-asterisk" "$ROOT/var/spool/callcenter" "$ROOT/var/run/asterisk"
    bind "$CONF_SRC" "$ROOT/etc/callcenter-asterisk"
    bind "$SPOOL" "$ROOT/var/spool/callcenter"
    is_mounted "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    is_mounted "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
}

# Asterisk processes of this root that do not answer (frozen, or half dead after a crash):
# they would hold the AMI and SIP ports from the next Asterisk.
kill_stale() {
    local pid
    for pid in $(pgrep -x asterisk || true); do
        [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ] || continue
        echo "asterisk-root: killing Asterisk $pid of $ROOT, which does not answer" >&2
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$ROOT/var/run/asterisk/asterisk.ctl" "$ROOT/var/run/asterisk/asterisk.pid"
}

unmounts() {
    for m in proc dev var/spool/callcenter etc/callcenter-asterisk; do
        is_mounted "$ROOT/$m" && umount -l "$ROOT/$m" || true
    done
}

running() { chroot "$ROOT" timeout 5 asterisk -rx "core show version" >/dev/null 2>&1; }

start() {
    build
    if running; then
        if same_dir "$CONF_SRC" "$ROOT/etc/callcenter-asterisk" && same_dir "$SPOOL" "$ROOT/var/spool/callcenter"; then
            # Ours, left by an engine that stopped or crashed: reused, with the configs of now.
            chroot "$ROOT" timeout 10 asterisk -rx "core reload" >/dev/null 2>&1 || true
            echo "asterisk-root: reusing the Asterisk already running (configs reloaded; AMI 127.0.0.1:5038, SIP 127.0.0.1:5060)"
            return 0
        fi
        echo "asterisk-root: stopping the Asterisk of another configuration running in $ROOT" >&2
        stop
    fi
    kill_stale
    mounts
    # The root's own /etc/asterisk points at our config folder.
    if [ ! -L "$ROOT/etc/asterisk" ]; then
        rm -rf "$ROOT/etc/asterisk.dist"; mv "$ROOT/etc/asterisk" "$ROOT/etc/asterisk.dist"
        ln -s /etc/callcenter-asterisk "$ROOT/etc/asterisk"
    fi
    # Detached (own session, no inherited descriptors), so callers of this script never wait on it.
    (cd / && setsid -f chroot "$ROOT" asterisk -f -n < /dev/null > "$SPOOL/asterisk.log" 2>&1)
    local deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        if chroot "$ROOT" timeout 5 asterisk -rx "core waitfullybooted" >/dev/null 2>&1; then
            echo "asterisk-root: Asterisk is up (AMI 127.0.0.1:5038, SIP 127.0.0.1:5060)"; return 0
        fi
        sleep 0.2
    done
    tail -20 "$SPOOL/asterisk.log" >&2
    die "Asterisk did not boot; see $SPOOL/asterisk.log"
}

stop() {
    if [ -d "$ROOT" ] && running; then
        chroot "$ROOT" asterisk -rx "core stop now" >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do running || break; sleep 0.1; done
    fi
    [ -d "$ROOT" ] && unmounts
    return 0
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    rx) shift; chroot "$ROOT" asterisk -rx "$*" ;;
    sipp) shift; chroot "$ROOT" sipp "$@" ;;
    path) echo "$ROOT" ;;
    *) die "usage: $0 build|start|stop|rx CMD|sipp ARGS|path" ;;
esac
