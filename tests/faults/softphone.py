"""A real softphone for the battery: Debian's baresip, scripted.

`Softphone.start()` writes a config folder of its own (an account with the agent's password,
auto-answer, a re-registration interval; no sound card: it speaks a WAV file through the
`aufile` source and plays what it hears into `aubridge`, which goes nowhere), starts
baresip on the host, and waits until Asterisk has its registration. `unregister()` asks it,
over its TCP control socket, to drop the account (a REGISTER with Expires: 0, as a softphone
that is closed does); `kill()` ends it without a word (a laptop that sleeps, Wi-Fi gone);
`stop()` ends it the polite way. Every start has a bounded wait and every process is ended.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
MODULES = Path("/usr/lib/baresip/modules")


@dataclass
class Softphone:
    user: str
    password: str
    folder: Path
    sip_port: int
    control_port: int
    speech_wav: Path | None = None      # 8 kHz mono 16-bit; None: silence from ausine off
    regint_s: int = 30                  # baresip registers again before this runs out
    answer: bool = True                 # auto-answer; False: it rings until the caller goes
    registrar: str = "127.0.0.1:5060"
    process: asyncio.subprocess.Process | None = field(default=None, init=False)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar}"

    def _write_config(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        source = f"aufile,{self.speech_wav}" if self.speech_wav else "ausine,440"
        (self.folder / "accounts").write_text(
            f"<{self.aor};transport=udp>;auth_user={self.user};auth_pass={self.password};"
            f"regint={self.regint_s};answermode={'auto' if self.answer else 'manual'};"
            "audio_codecs=PCMU/8000/1,PCMA/8000/1\n")
        (self.folder / "config").write_text("\n".join([
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            "sip_transports udp",
            f"audio_source {source}",
            "audio_player aubridge,nowhere",
            "audio_alert aubridge,nowhere",
            "audio_srate 8000",
            "audio_channels 1",
            "rtp_ports 27000-27999",
            f"module_path {MODULES}",
            "module g711.so",
            "module aufile.so",
            "module ausine.so",
            "module aubridge.so",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{self.control_port}",
            "",
        ]))
        (self.folder / "contacts").write_text("")

    async def start(self) -> None:
        if self.process is not None and self.process.returncode is None:
            raise RuntimeError("this softphone already runs")
        self._write_config()
        log = open(self.folder / "baresip.log", "ab")
        self.process = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(self.folder), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

    def log(self) -> str:
        path = self.folder / "baresip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def command(self, command: str, params: str = "", timeout: float = 5) -> None:
        """One command over ctrl_tcp (a netstring of JSON), e.g. "uadel" with the AOR."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
                break
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        body = json.dumps({"command": command, "params": params, "token": "test"}).encode()
        writer.write(str(len(body)).encode() + b":" + body + b",")
        await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(reader.read(4096), timeout)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def unregister(self) -> None:
        """Drop the account: baresip sends REGISTER with Expires: 0."""
        await self.command("uadel", self.aor)

    async def kill(self) -> None:
        """Gone without a word: no de-registration, no BYE."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self, timeout: float = 5) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()
