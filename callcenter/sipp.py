"""Test callers and agents' phones with SIPp: scenarios, speech as RTP, and a runner.

Used by the end-to-end tests, the answer-latency benchmark and `callcenter call` (a test call
with keypad input). SIPp 3.8 runs inside the Asterisk root (its RFC 2833 captures play whole
there); scenario and audio files are written into the spool folder that Asterisk and the
engine share, so the same file has one path on the host and another inside the root.

Parties:
- `caller_scenario`: dials the hotline, presses keys (RFC 2833), speaks (a pcap of RTP/PCMU),
  then hangs up after a while unless the hotline hangs up first. INVITE to 200 OK is timed
  (SIPp response-time "rtd 1").
- `agent_scenario`: an agent's phone that rings for a while, answers, speaks, and hangs up
  after a while unless the caller does first. Serves any number of calls.
- `no_answer_scenario` / `busy_scenario`: a phone that rings until cancelled, or is busy.
- `register_scenario`: a softphone registering with its password, once, or again and again
  before its registration expires (then its calls are answered by the out-of-call scenario
  of the same SIPp, on the address it registered).
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import struct
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ASTERISK_ROOT = Path(os.environ.get("CALLCENTER_ASTERISK_ROOT", "/var/cache/callcenter/asterisk-root"))
DTMF_NAMES = {"*": "star", "#": "pound", **{str(d): str(d) for d in range(10)}}
SPOOL_IN_ROOT = "/var/spool/callcenter"
KEY_DIR = "sipp/keys"       # RFC 4733 captures, one per key position and digit
MAX_KEYS = 8


def _key_pcap(position: int, digit: str) -> str:
    return f"{SPOOL_IN_ROOT}/{KEY_DIR}/key{position}_{DTMF_NAMES[digit]}.pcap"


# ---------------------------------------------------------------- speech as RTP


def ulaw_encode(pcm16: bytes) -> bytes:
    """G.711 mu-law of 16-bit little-endian linear samples."""
    out = bytearray()
    for (sample,) in struct.iter_unpack("<h", pcm16):
        sign = 0x80 if sample < 0 else 0
        magnitude = min(abs(sample), 32635) + 132
        exponent = max(0, magnitude.bit_length() - 8)
        mantissa = (magnitude >> (exponent + 3)) & 0x0F
        out.append(~(sign | (min(exponent, 7) << 4) | mantissa) & 0xFF)
    return bytes(out)


def speak_to_wav(text: str, path: Path, voice: str = "en", speed_wpm: int = 150) -> Path:
    """espeak-ng speech as 8 kHz mono 16-bit WAV (sox converts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path)],
                       check=True)
    return path


def wav_to_rtp_pcap(wav_path: Path, pcap_path: Path, lead_silence_s: float = 0.0, total_s: float = 0.0) -> Path:
    """An RTP/PCMU capture (20 ms packets) of an 8 kHz mono 16-bit WAV, for play_pcap_audio;
    padded with silence to `total_s` seconds when that is longer."""
    with wave.open(str(wav_path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
            raise ValueError(f"{wav_path}: need 8 kHz mono 16-bit, got {w.getframerate()} Hz "
                             f"{w.getnchannels()} ch {8 * w.getsampwidth()} bit")
        pcm = b"\0\0" * int(8000 * lead_silence_s) + w.readframes(w.getnframes())
    pcm = pcm.ljust(int(8000 * total_s) * 2, b"\0")
    payload = ulaw_encode(pcm)
    packets = [(0, n, n * 160, payload[start:start + 160].ljust(160, b"\xff"))
               for n, start in enumerate(range(0, len(payload), 160))]
    return _write_pcap(pcap_path, packets, ssrc=0x5EED0001)


def _write_pcap(path: Path, packets: list[tuple[int, int, int, bytes]], ssrc: int, marker_first: bool = False) -> Path:
    """A pcap of RTP packets (payload type, sequence number, timestamp, payload), 20 ms apart."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, (payload_type, seq, timestamp, payload) in enumerate(packets):
        marker = 0x80 if marker_first and i == 0 else 0
        rtp = struct.pack("!BBHII", 0x80, marker | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        t_us = i * 20_000
        out += struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(frame), len(frame)) + frame
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


RFC4733_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def dtmf_pcap(digit: str, path: Path, timestamp: int, seq: int = 0, duration_ms: int = 120) -> Path:
    """An RFC 4733 key press (payload type 101) whose event timestamp is `timestamp`.

    Asterisk ignores an event whose timestamp equals the last one it ended, so every key of
    a call needs its own timestamp: the captures shipped with SIPp all share one."""
    event = RFC4733_EVENTS[digit]
    steps = duration_ms // 20
    packets = []
    for n in range(1, steps + 1):
        packets.append((101, seq + n - 1, timestamp, struct.pack("!BBH", event, 10, n * 160)))
    for n in range(3):   # the end packet, sent three times as RFC 4733 asks
        packets.append((101, seq + steps + n, timestamp, struct.pack("!BBH", event, 0x80 | 10, steps * 160)))
    return _write_pcap(path, packets, ssrc=0x5EED0002, marker_first=True)


# ---------------------------------------------------------------- scenarios

_SDP = """v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv"""


def _xml(name: str, body: str) -> str:
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n{body}\n</scenario>\n'


def _play(pcap: str) -> str:
    return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'


@dataclass(frozen=True)
class Key:
    """Press `digit` `after_ms` after the previous step."""

    digit: str
    after_ms: int = 1500


def caller_scenario(number: str = "13800000000", name: str = "caller", keys: tuple[Key, ...] = (),
                    speech_pcap: str | None = None, speak_after_ms: int = 0, hangup_after_ms: int = 10_000,
                    survey_key: Key | None = None) -> str:
    """A caller: dials [service], presses keys, maybe speaks, hangs up after `hangup_after_ms`
    from the last key unless the hotline hangs up first (then an optional survey key is
    pressed when the hotline keeps the line after the agent leaves: see `survey_key`)."""
    steps = ""
    if len(keys) + (survey_key is not None) > MAX_KEYS:
        raise ValueError(f"at most {MAX_KEYS} keys in one call")
    for position, key in enumerate(keys):
        if key.digit not in DTMF_NAMES:
            raise ValueError(f"not a keypad digit: {key.digit!r}")
        # The capture lasts about 200 ms; playing anything else before it ends would cut it.
        steps += (f'  <pause milliseconds="{key.after_ms}"/>\n'
                  + _play(_key_pcap(position, key.digit))
                  + '  <pause milliseconds="400"/>\n')
    if speech_pcap:
        steps += f'  <pause milliseconds="{speak_after_ms}"/>\n' + _play(speech_pcap)
    survey = ""
    if survey_key is not None:
        survey = (f'  <pause milliseconds="{survey_key.after_ms}"/>\n'
                  + _play(_key_pcap(len(keys), survey_key.digit)))
    body = f"""  <send retrans="500" start_rtd="1">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="1" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
{steps}  <recv request="BYE" timeout="{hangup_after_ms}" ontimeout="hangup"/>
  <send next="end">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
    ]]>
  </send>
  <label id="hangup"/>
{survey}  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <label id="end"/>
  <ResponseTimeRepartition value="1, 2, 5, 10, 20, 50, 100, 200, 500, 1000"/>"""
    return _xml("hotline caller", body)


_UAS_RESPONSE = """SIP/2.0 {code}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0"""


def agent_scenario(ring_ms: int = 300, speech_pcap: str | None = None, speak_after_ms: int = 500,
                   hangup_after_ms: int = 60_000, keys: tuple[Key, ...] = (), answers_options: bool = False) -> str:
    """A phone that answers: an agent's, or a citizen's for a follow-up call. It rings
    `ring_ms`, answers, presses `keys`, speaks, and hangs up after `hangup_after_ms` unless
    the other side hangs up first. `answers_options`: a dialog may also be Asterisk's
    qualify (SIP OPTIONS), answered 200 (the out-of-call scenario of a registering phone)."""
    speak = "".join(f'  <pause milliseconds="{key.after_ms}"/>\n' + _play(_key_pcap(n, key.digit))
                    + '  <pause milliseconds="400"/>\n' for n, key in enumerate(keys))
    speak += (f'  <pause milliseconds="{speak_after_ms}"/>\n' + _play(speech_pcap)) if speech_pcap else ""
    options_first = '  <recv request="OPTIONS" optional="true" next="options"/>\n' if answers_options else ""
    options_branch = f"""  <nop next="end"/>
  <label id="options"/>
  <send><![CDATA[
{_UAS_RESPONSE.format(code="200 OK")}
  ]]></send>
""" if answers_options else ""
    body = f"""{options_first}  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="&lt;(sip:[^&gt;]*)&gt;" search_in="hdr" header="Contact:" assign_to="dummy,remote_contact"/>
    </action>
  </recv>
  <send><![CDATA[
{_UAS_RESPONSE.format(code="100 Trying")}
  ]]></send>
  <send><![CDATA[
{_UAS_RESPONSE.format(code="180 Ringing")}
  ]]></send>
  <pause milliseconds="{ring_ms}"/>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
  ]]></send>
  <recv request="ACK" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="their_side"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="our_side"/>
    </action>
  </recv>
{speak}  <recv request="BYE" timeout="{hangup_after_ms}" ontimeout="hangup"/>
  <send next="end"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
  ]]></send>
  <label id="hangup"/>
  <send retrans="500"><![CDATA[
BYE [$remote_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$our_side]
To: [$their_side]
[last_Call-ID:]
CSeq: 1 BYE
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
{options_branch}  <label id="end"/>
  <Reference variables="dummy"/>"""
    return _xml("agent phone", body)


def register_scenario(user: str, password: str, expires_s: int = 600, refresh_s: float | None = None) -> str:
    """A softphone registering as `user` with its password (digest auth). Without
    `refresh_s` it registers once and is done (the phone's calls then come to the same
    address, where `agent_scenario` answers them). With `refresh_s` it registers again every
    `refresh_s` seconds (before `expires_s` runs out, as a softphone does) until stopped:
    run it with `answering_phone` as the out-of-call scenario, so the same address answers."""
    if any(c in user + password for c in "\r\n<>&\"' "):
        raise ValueError("user and password must be plain text for a SIPp scenario")
    if refresh_s is not None and not 0 < refresh_s < expires_s:
        raise ValueError(f"refresh_s must be between 0 and expires_s ({expires_s}), got {refresh_s!r}")
    register = """REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]SIPpTag09[call_number]
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{user}@[local_ip]:[local_port]>
Expires: {expires}
Max-Forwards: 70
{auth}Content-Length: 0"""
    cseq = "[cseq]" if refresh_s is not None else "1"
    first = register.format(user=user, cseq=cseq, expires=expires_s, auth="")
    second = register.format(user=user, cseq="[cseq]" if refresh_s is not None else "2", expires=expires_s,
                             auth=f"[authentication username={user} password={password}]\n")
    body = f"""  <label id="register"/>
  <send retrans="500"><![CDATA[
{first}
  ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
{second}
  ]]></send>
  <recv response="200"/>"""
    if refresh_s is not None:
        body += f"""
  <pause milliseconds="{int(refresh_s * 1000)}"/>
  <nop next="register"/>"""
    return _xml("softphone registration", body)


def no_answer_scenario() -> str:
    """A phone that rings until the hotline gives up (CANCEL)."""
    body = f"""  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" assign_to="dummy,invite_cseq"/>
    </action>
  </recv>
  <send><![CDATA[
{_UAS_RESPONSE.format(code="180 Ringing")}
  ]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
  ]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$invite_cseq] INVITE
Content-Length: 0
  ]]></send>
  <recv request="ACK"/>
  <Reference variables="dummy"/>"""
    return _xml("agent phone that does not answer", body)


# ---------------------------------------------------------------- running


class SippFailed(AssertionError):
    """A SIPp party did not end as it should; the message names it, says how it ended and
    quotes the tail of its output and of its error log."""


@dataclass
class SippRun:
    """A SIPp process in the Asterisk root.

    Its exit code is SIPp's verdict on its calls (0: every call went through the scenario; 1:
    at least one failed; others: it could not run, or its -timeout ran out). Whoever starts a
    run looks at that verdict: `expect_ok(run)` waits and raises with the tail of the output,
    `expect_failure(run)` for a run meant to fail, `stop()` for a phone the test ends itself
    (SIPp ends gracefully on SIGTERM; its code still counts the calls that failed before).
    `Sipp.unchecked()` lists every run whose verdict nobody took."""

    name: str
    process: asyncio.subprocess.Process
    workdir: Path
    args: list[str] = field(default_factory=list)
    stopped_on_purpose: bool = False
    failure_expected: bool = False
    left_running: bool = False

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait(self, timeout: float) -> int:
        """SIPp's exit code; killed (and TimeoutError) when it runs longer than `timeout`."""
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.process.wait()
            raise
        return code

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> int:
        """End a party the test has no more use for (an agent's phone); returns the exit code,
        which counts the calls that failed while it ran. A run that already ended is left as it was."""
        if self.process.returncode is None:
            self.stopped_on_purpose = True
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        return self.process.returncode if self.process.returncode is not None else -1

    def output(self) -> str:
        path = self.workdir / f"{self.name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def errors(self) -> str:
        path = self.workdir / f"{self.name}_errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, chars: int = 2500) -> str:
        """The end of SIPp's screen output (its last statistics) and of its error log."""
        errors = self.errors()[-chars:]
        return self.output()[-chars:] + (f"\n--- {self.name}_errors.log ---\n{errors}" if errors.strip() else "")

    def failure(self, why: str) -> SippFailed:
        return SippFailed(f"sipp {self.name}: {why}\n{self.tail()}")

    def rtt_ms(self) -> list[float]:
        """INVITE-to-200 OK times (ms) of every call, from SIPp's -trace_rtt file."""
        values: list[float] = []
        for path in self.workdir.glob(f"{self.name}_*_rtt.csv"):
            # Date_ms;response_time_ms;rtd_no
            for line in path.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2 and parts[1].strip():
                    values.append(float(parts[1]))
        return values


async def expect_ok(run: SippRun, timeout: float = 60) -> None:
    """Wait for `run` to end and raise `SippFailed` unless SIPp exited 0 (every call as scripted).
    A run the test stopped itself counts by the code SIPp gave then."""
    if run.returncode is None:
        try:
            await run.wait(timeout)
        except TimeoutError:
            raise run.failure(f"still running after {timeout:g} s (killed)") from None
    if run.returncode != 0:
        raise run.failure(f"exited {run.returncode}" + (" when stopped" if run.stopped_on_purpose else ""))


async def expect_failure(run: SippRun, timeout: float = 60) -> int:
    """Wait for a run that is meant to fail (a wrong password) and return its non-zero code."""
    run.failure_expected = True
    try:
        code = await run.wait(timeout)
    except TimeoutError:
        raise run.failure(f"still running after {timeout:g} s (killed)") from None
    if code == 0:
        raise run.failure("exited 0, but it was meant to fail")
    return code


async def stop_ok(run: SippRun) -> None:
    """Stop a party the test is done with (an agent's phone that would serve more calls) and
    raise `SippFailed` if any call it had failed (SIPp's exit code on SIGTERM counts them)."""
    await run.stop()
    await expect_ok(run)


class Sipp:
    """Runs SIPp from the Asterisk root. `host_dir` is the shared spool as the host sees it,
    `root_dir` the same folder as seen inside the root. Keeps every run it started, so a test
    can be held to checking each one (`unchecked`)."""

    def __init__(self, host_dir: Path, root_dir: str = "/var/spool/callcenter", asterisk_root: Path = ASTERISK_ROOT):
        self.host_dir = Path(host_dir)
        self.root_dir = root_dir
        self.asterisk_root = asterisk_root
        self.runs: list[SippRun] = []
        (self.host_dir / "sipp").mkdir(parents=True, exist_ok=True)
        keys = self.host_dir / KEY_DIR
        if not (keys / f"key{MAX_KEYS - 1}_pound.pcap").exists():
            for position in range(MAX_KEYS):
                for digit, name in DTMF_NAMES.items():
                    dtmf_pcap(digit, keys / f"key{position}_{name}.pcap", timestamp=(position + 1) * 8_000_000,
                              seq=(position + 1) * 5_000)

    def write(self, relative: str, text: str | bytes) -> str:
        """Write a file into the shared spool; returns its path inside the root."""
        path = self.host_dir / "sipp" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return f"{self.root_dir}/sipp/{relative}"

    def speech(self, relative: str, text: str, voice: str = "en", lead_silence_s: float = 0.0,
               total_s: float = 0.0) -> str:
        """A pcap of espeak-ng speech in the shared spool, padded with silence to `total_s`
        (a phone sends RTP all the time, so recordings keep the call's real timing);
        returns its path inside the root."""
        wav = self.host_dir / "sipp" / (relative + ".wav")
        speak_to_wav(text, wav, voice=voice)
        wav_to_rtp_pcap(wav, self.host_dir / "sipp" / relative, lead_silence_s=lead_silence_s, total_s=total_s)
        return f"{self.root_dir}/sipp/{relative}"

    async def start(self, name: str, scenario_xml: str, *, sip_port: int, media_port: int,
                    target: str | None = "127.0.0.1:5060", service: str | None = None, calls: int = 1,
                    rate: float = 1.0, rate_period_ms: int = 1000, concurrent: int | None = None,
                    timeout_s: float = 60, trace_rtt: bool = False, trace_msg: bool = False,
                    out_of_call_xml: str | None = None) -> SippRun:
        """Start a SIPp party. Every party answers SIP OPTIONS (-aa: Asterisk asks agents'
        phones whether they are there) and INFO/NOTIFY/UPDATE outside its scenario.
        `out_of_call_xml`: the scenario for requests that start a dialog of their own (a
        registering softphone's incoming calls, `register_scenario(refresh_s=...)`)."""
        scenario = self.write(f"{name}.xml", scenario_xml)
        workdir = self.host_dir / "sipp"
        for old in [*workdir.glob(f"{name}_*_rtt.csv"), workdir / f"{name}_errors.log"]:
            old.unlink(missing_ok=True)
        args = ["-sf", scenario, "-i", "127.0.0.1", "-p", str(sip_port), "-mp", str(media_port),
                "-m", str(calls), "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-nostdin",
                "-trace_err", "-error_file", f"{self.root_dir}/sipp/{name}_errors.log", "-aa"]
        if out_of_call_xml is not None:
            args += ["-oocsf", self.write(f"{name}_calls.xml", out_of_call_xml)]
        if target is not None:
            args += [target, "-r", str(rate), "-rp", str(rate_period_ms)]
            if concurrent:
                args += ["-l", str(concurrent)]
        if service:
            args += ["-s", service]
        if trace_rtt:
            args += ["-trace_rtt", "-rtt_freq", "1"]
        if trace_msg:
            args += ["-trace_msg", "-message_file", f"{self.root_dir}/sipp/{name}_messages.log"]
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        out = open(workdir / f"{name}.out", "wb")
        process = await asyncio.create_subprocess_exec(
            chroot, str(self.asterisk_root), "sh", "-c", f'cd {self.root_dir}/sipp && exec sipp "$@"', "sipp", *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        log.info("sipp %s started (pid %s): %s", name, process.pid, " ".join(args))
        run = SippRun(name=name, process=process, workdir=workdir, args=args)
        self.runs.append(run)
        return run

    async def softphone(self, name: str, user: str, password: str, *, sip_port: int, media_port: int,
                        target: str = "127.0.0.1:5060", expires_s: int = 120, ring_ms: int = 1000,
                        speech_pcap: str | None = None, hangup_after_ms: int = 10_000,
                        timeout_s: float = 24 * 3600) -> SippRun:
        """An agent's softphone in one SIPp: it registers, registers again at half of
        `expires_s` (before the registration runs out) until stopped, and answers every call
        on the address it registered. Not yet what `callcenter phone` runs: on the real
        Asterisk it stays registered, but qualify marks it unreachable after its first
        answer to OPTIONS (the out-of-call dialogs of a SIPp client), so it is not rung."""
        return await self.start(
            name, register_scenario(user, password, expires_s=expires_s, refresh_s=expires_s / 2),
            sip_port=sip_port, media_port=media_port, target=target, timeout_s=timeout_s,
            out_of_call_xml=agent_scenario(ring_ms=ring_ms, speech_pcap=speech_pcap, hangup_after_ms=hangup_after_ms,
                                           answers_options=True))

    def note_left_running(self) -> None:
        """Mark every run still going as left running (not stopped on purpose), whatever ends it now."""
        for run in self.runs:
            if run.returncode is None:
                run.left_running = True

    async def stop_all(self) -> None:
        """Stop every run still going; each counts as left running, not stopped on purpose."""
        self.note_left_running()
        for run in self.runs:
            if run.returncode is None:
                await run.stop()

    async def unchecked(self) -> list[str]:
        """Stop every run still going, and say which runs were not as they should be at the end:
        left running (never waited for or stopped), or ended with a non-zero code that was not
        expected (`expect_failure`), including a stop on purpose after calls that failed."""
        await self.stop_all()
        problems = []
        for run in self.runs:
            if run.left_running:
                problems.append(f"sipp {run.name}: still running at the end (never waited for or stopped)")
            elif run.returncode != 0 and not run.failure_expected:
                how = "stopped on purpose, but " if run.stopped_on_purpose else ""
                problems.append(f"sipp {run.name}: {how}exited {run.returncode}\n{run.tail(1500)}")
        return problems
