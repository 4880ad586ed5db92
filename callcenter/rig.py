"""The local Asterisk: render its configs, put the prompts in place, start and stop it.

Used by `callcenter run`, the end-to-end tests and the benchmarks. Asterisk runs from the
root that scripts/asterisk-root.sh builds (Debian sid's Asterisk 22), sharing the spool
folder (recordings, prompts, SIPp files) and the rendered config folder with the host.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from callcenter.asterisk_config import render
from callcenter.config import Settings

ROOT_DIR = Path(__file__).resolve().parent.parent
SCRIPT = ROOT_DIR / "scripts" / "asterisk-root.sh"


class RigError(Exception):
    """The local Asterisk could not be set up or started."""


@dataclass
class AsteriskRig:
    settings: Settings

    @property
    def spool(self) -> Path:
        return self.settings.paths.spool_dir.resolve()

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CALLCENTER_SPOOL": str(self.spool),
                "CALLCENTER_ASTERISK_CONF": str(self.settings.paths.asterisk_config_dir.resolve())}

    def prepare(self, prompt_cache: Path | None = None) -> None:
        """Render the configs and build the prompts (cached in `prompt_cache` when given)."""
        from callcenter.ivr.model import load_menu
        from callcenter.ivr.prompts import build_prompts

        render(self.settings)
        menu = load_menu(self.settings.ivr.menu_file or None)
        target = self.settings.paths.prompts_dir
        build_dir = prompt_cache or target
        build_dir.mkdir(parents=True, exist_ok=True)
        build_prompts(menu, build_dir, voice=self.settings.ivr.voice, speed_wpm=self.settings.ivr.speed_wpm)
        if build_dir != target:
            target.mkdir(parents=True, exist_ok=True)
            for wav in build_dir.glob("*.wav"):
                shutil.copyfile(wav, target / wav.name)

    def start(self) -> None:
        self.stop()
        done = subprocess.run([str(SCRIPT), "start"], env=self.env, timeout=600, capture_output=True, text=True)
        if done.returncode != 0:
            raise RigError(f"Asterisk did not start:\n{done.stdout}\n{done.stderr}")

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop"], env=self.env, timeout=120, check=False, capture_output=True)

    def rx(self, command: str) -> str:
        return subprocess.run([str(SCRIPT), "rx", command], capture_output=True, text=True, timeout=30,
                              env=self.env).stdout

    def channels(self) -> list[str]:
        return [line.split("!")[0] for line in self.rx("core show channels concise").splitlines() if "!" in line]

    def hangup_all(self) -> None:
        self.rx("channel request hangup all")
