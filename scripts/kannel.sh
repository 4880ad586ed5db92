#!/usr/bin/env bash
# The SMS gateway: Kannel (bearerbox + smsbox) from Debian, configured from the hotline's
# settings ([sms]; CALLCENTER_CONFIG and CALLCENTER_SMS__* as for the hotline itself), with
# fakesmsc as the carrier on the embedded defaults.
#   scripts/kannel.sh install            kannel and kannel-extras, when missing (root)
#   scripts/kannel.sh start | stop | status
#   scripts/kannel.sh bearerbox-stop | bearerbox-start   (the gateway going away and coming back)
# Everything it starts runs as this user, listens on the loopback, and keeps its pid, log and
# store files in sms.config_dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$HERE/.venv/bin/python}
[ -x "$PY" ] || PY=python3
FAKESMSC=/usr/lib/kannel/test/fakesmsc

say() { echo "kannel: $*"; }
setting() { "$PY" -c "from callcenter.config import load_settings; s = load_settings().sms; print($1)"; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_port() { for _ in $(seq 1 100); do answers "$1" && return 0; sleep 0.1; done; return 1; }

install() {
    if ! command -v bearerbox >/dev/null || [ ! -x "$FAKESMSC" ]; then
        say "installing kannel kannel-extras"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel kannel-extras >/dev/null
    fi
}

load() {
    read -r DIR ADMIN_PORT SENDSMS_PORT CARRIER_PORT FAKE < <(setting \
        '" ".join(map(str, (s.config_dir.resolve(), s.admin_port, s.sendsms_port, s.carrier_port, "no" if s.carrier_include else "yes")))')
    mkdir -p "$DIR"
    CONF="$DIR/kannel.conf"
}

bearerbox_start() {
    alive "$DIR/bearerbox.pid" && return 0
    setsid /usr/sbin/bearerbox -v 1 "$CONF" >>"$DIR/bearerbox.out" 2>&1 < /dev/null &
    echo $! > "$DIR/bearerbox.pid"
    wait_port "$ADMIN_PORT" || { say "bearerbox did not start (see $DIR/bearerbox.log)" >&2; exit 1; }
}

bearerbox_stop() {
    if alive "$DIR/bearerbox.pid"; then
        pid=$(cat "$DIR/bearerbox.pid")
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$DIR/bearerbox.pid"
}

start() {
    load
    "$PY" -m callcenter.sms.kannel_config "$CONF" >/dev/null
    bearerbox_start
    if ! alive "$DIR/smsbox.pid"; then
        # run_kannel_box starts smsbox again whenever it dies (a bare smsbox dies for good
        # when bearerbox goes away).
        /usr/sbin/run_kannel_box --pidfile "$DIR/smsbox.pid" --min-delay 1 --no-extra-args \
            /usr/sbin/smsbox -v 1 -- "$CONF" >>"$DIR/smsbox.out" 2>&1 < /dev/null
    fi
    wait_port "$SENDSMS_PORT" || { say "smsbox did not start (see $DIR/smsbox.log)" >&2; exit 1; }
    if [ "$FAKE" = yes ] && ! alive "$DIR/fakesmsc.pid"; then
        # The carrier: receive-only (-m 0). It exits whenever bearerbox goes away: start it again.
        setsid bash -c "while true; do $FAKESMSC -H 127.0.0.1 -r $CARRIER_PORT -m 0 '100 200 text dummy' \
            >>'$DIR/fakesmsc.log' 2>&1 < /dev/null; sleep 0.5; done" >/dev/null 2>&1 < /dev/null &
        echo $! > "$DIR/fakesmsc.pid"
    fi
    say "running (sendsms on 127.0.0.1:$SENDSMS_PORT, files in $DIR)"
}

stop() {
    load
    if alive "$DIR/fakesmsc.pid"; then kill -- "-$(cat "$DIR/fakesmsc.pid")" 2>/dev/null || true; fi
    if alive "$DIR/smsbox.pid"; then
        pid=$(cat "$DIR/smsbox.pid")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    bearerbox_stop
    rm -f "$DIR/fakesmsc.pid" "$DIR/smsbox.pid"
    say "stopped"
}

status() {
    load
    for box in bearerbox smsbox fakesmsc; do
        if alive "$DIR/$box.pid"; then echo "$box: running ($(cat "$DIR/$box.pid"))"; else echo "$box: stopped"; fi
    done
    answers "$SENDSMS_PORT" && echo "sendsms: answers on $SENDSMS_PORT" || echo "sendsms: no answer on $SENDSMS_PORT"
}

case "${1:-}" in
    install) install ;;
    start) install; start ;;
    stop) stop ;;
    status) status ;;
    bearerbox-stop) load; bearerbox_stop ;;
    bearerbox-start) load; bearerbox_start ;;
    *) echo "usage: $0 install|start|stop|status|bearerbox-stop|bearerbox-start" >&2; exit 2 ;;
esac
