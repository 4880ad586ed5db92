"""Kannel's configuration, rendered from the settings (as Asterisk's is): one file for
bearerbox and smsbox, written by `python -m callcenter.sms.kannel_config` (scripts/kannel.sh).

Only settings reach it, never a request. Everything listens on the loopback only; the carrier
is `fakesmsc` on its own fake SMSC port unless `sms.carrier_include` names a file of real
`smsc` groups (SMPP to a carrier or an SMS provider), which is included instead. A second fake
SMSC port (`mo_inject_port`) takes injected replies only: `allowed-smsc-id` keeps MT off it,
since a fake SMSC port serves one client at a time.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from callcenter.config import Settings, load_settings
from callcenter.sms.kannel import MO_PATH

_SAFE = re.compile(r"^[A-Za-z0-9_.:/\[\]-]*$")
MO_QUERY = "from=%p&to=%P&text=%a&coding=%c&charset=%C&smsc=%i&ts=%t"


def _safe(name: str, value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"sms.{name}: letters, digits and _ . : / - only (it goes into Kannel's config)")
    return value


def _secret(name: str, value: object) -> str:
    get = getattr(value, "get_secret_value", None)
    if get is None:
        raise ValueError(f"sms.{name}: required (run `callcenter init`)")
    return _safe(name, str(get()))


def render(settings: Settings) -> str:
    s = settings.sms
    cfg = Path(s.config_dir).resolve()
    base = s.callback_url or f"http://{settings.web.host}:{settings.web.port}"
    host = _safe("kannel_host", s.kannel_host)
    admin, sendsms, mo_token = (_secret("admin_password", s.admin_password),
                                _secret("sendsms_password", s.sendsms_password), _secret("mo_token", s.mo_token))
    allow = ";".join(_safe("kannel_addresses", a) for a in s.kannel_addresses) or "127.0.0.1"
    carrier = (f'include = "{_safe("carrier_include", str(Path(s.carrier_include).resolve()))}"\n'
               if s.carrier_include else f"""group = smsc
smsc = fake
smsc-id = carrier
port = {s.carrier_port}
connect-allow-ip = "127.0.0.1"
""")
    return f"""# Rendered from the hotline's settings ([sms]); edit those, not this file.
group = core
admin-port = {s.admin_port}
admin-interface = "{host}"
admin-password = "{admin}"
status-password = "{admin}"
admin-allow-ip = "127.0.0.1"
admin-deny-ip = "*.*.*.*"
smsbox-port = {s.smsbox_port}
smsbox-interface = "{host}"
box-allow-ip = "127.0.0.1"
box-deny-ip = "*.*.*.*"
log-file = "{cfg}/bearerbox.log"
log-level = 1
access-log = "{cfg}/access.log"
store-type = file
store-location = "{cfg}/kannel.store"
dlr-storage = internal

{carrier}
group = smsc
smsc = fake
smsc-id = mo-inject
allowed-smsc-id = mo-inject
port = {s.mo_inject_port}
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = "{host}"
bearerbox-port = {s.smsbox_port}
sendsms-port = {s.sendsms_port}
sendsms-interface = "{host}"
mo-recode = true
# A reply or delivery report the hotline did not take (down, restarting) is offered again.
http-request-retry = 3
http-queue-delay = 2
log-file = "{cfg}/smsbox.log"
log-level = 1

group = sendsms-user
username = "{s.sendsms_username}"
password = "{sendsms}"
user-allow-ip = "{allow}"
user-deny-ip = "*.*.*.*"
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{_safe('callback_url', base)}{MO_PATH}?{MO_QUERY}&token={mo_token}"
"""


def main(argv: list[str]) -> int:
    settings = load_settings()
    target = Path(argv[1]) if len(argv) > 1 else Path(settings.sms.config_dir) / "kannel.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(settings))
    target.chmod(0o600)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
