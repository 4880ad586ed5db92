#!/usr/bin/env bash
# Everything the hotline needs from the operating system (Debian 12, run as root):
# Debian packages (baresip: the real softphone of the fault tests), Redis and PostgreSQL when
# none answers, the Asterisk root and Kannel.
# Each step is skipped when it is already done, so a second run takes a second.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PACKAGES="python3 python3-venv python3-dev espeak-ng sox libsox-fmt-all ffmpeg debootstrap curl ca-certificates
          chromium fonts-wqy-microhei baresip"

say() { echo "setup: $*"; }

missing=()
for p in $PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! answers 6379; then
    say "no Redis on 127.0.0.1:6379: installing and starting one"
    command -v redis-server >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/callcenter.log
    for _ in $(seq 1 50); do answers 6379 && break; sleep 0.1; done
    answers 6379 || { echo "setup: Redis did not start" >&2; exit 1; }
fi

if [ "${CALLCENTER_NEED_POSTGRES:-0}" = 1 ] && ! answers 5432; then
    say "no PostgreSQL on 127.0.0.1:5432: installing and starting one (trust on the loopback, for tests)"
    command -v pg_ctlcluster >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
    version=$(ls /etc/postgresql | sort -n | tail -1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    grep -q "callcenter-test" "$hba" || sed -i "1i host all all 127.0.0.1/32 trust # callcenter-test" "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 100); do answers 5432 && break; sleep 0.1; done
    answers 5432 || { echo "setup: PostgreSQL did not start" >&2; exit 1; }
fi

"$HERE/scripts/asterisk-root.sh" build
# The SMS gateway (Kannel and fakesmsc); `make run` starts it, the tests start their own.
"$HERE/scripts/kannel.sh" install
