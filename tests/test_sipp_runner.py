"""The SIPp runner holds every party to its exit code: checked without SIPp or Asterisk, with
plain processes standing in for SIPp (only the exit code and the output files matter here)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter.sipp import Sipp, SippFailed, SippRun, expect_failure, expect_ok, stop_ok


async def run(tmp_path: Path, name: str, script: str, output: str = "") -> SippRun:
    (tmp_path / f"{name}.out").write_text(output)
    process = await asyncio.create_subprocess_exec("sh", "-c", script)
    return SippRun(name=name, process=process, workdir=tmp_path)


async def trapped(tmp_path: Path, name: str, code: int) -> SippRun:
    """A stand-in phone that ends with `code` on SIGTERM, once its trap is set."""
    ready = tmp_path / f"{name}.ready"
    party = await run(tmp_path, name, f"trap 'exit {code}' TERM; touch {ready}; while :; do sleep 0.05; done")
    for _ in range(100):
        if ready.exists():
            return party
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name}: the shell did not start")


async def test_expect_ok_raises_with_the_tail_of_the_output_and_the_error_log(tmp_path: Path) -> None:
    failed = await run(tmp_path, "caller_x", "exit 1", output="...\n  Failed call | 3\n")
    (tmp_path / "caller_x_errors.log").write_text("Aborting call on unexpected message 503")
    with pytest.raises(SippFailed, match=r"(?s)sipp caller_x: exited 1.*Failed call \| 3.*unexpected message 503"):
        await expect_ok(failed)
    await expect_ok(await run(tmp_path, "caller_ok", "exit 0"))


async def test_expect_ok_kills_a_party_that_runs_too_long(tmp_path: Path) -> None:
    hung = await run(tmp_path, "caller_hung", "exec sleep 30")
    with pytest.raises(SippFailed, match=r"still running after 0\.2 s"):
        await expect_ok(hung, 0.2)
    assert hung.returncode is not None


async def test_a_party_meant_to_fail_must_fail(tmp_path: Path) -> None:
    assert await expect_failure(await run(tmp_path, "wrong_password", "exit 1")) == 1
    with pytest.raises(SippFailed, match="meant to fail"):
        await expect_failure(await run(tmp_path, "right_password", "exit 0"))


async def test_a_phone_stopped_on_purpose_is_judged_by_the_code_it_ends_with(tmp_path: Path) -> None:
    # SIPp ends gracefully on SIGTERM with 0 when none of its calls failed, 1 when one did.
    clean = await trapped(tmp_path, "phone_clean", 0)
    failed = await trapped(tmp_path, "phone_failed", 1)
    await stop_ok(clean)
    assert clean.stopped_on_purpose
    with pytest.raises(SippFailed, match="exited 1 when stopped"):
        await stop_ok(failed)


async def test_unchecked_names_every_party_left_running_or_failed_unseen(tmp_path: Path) -> None:
    fine = await run(tmp_path, "caller_fine", "exit 0")
    forgotten = await run(tmp_path, "phone_forgotten", "exec sleep 30")
    unseen = await run(tmp_path, "caller_unseen", "exit 1")
    meant = await run(tmp_path, "register_wrong", "exit 1")
    await expect_failure(meant)
    await unseen.wait(5)          # waited for, but its code was never looked at
    await fine.wait(5)
    sipp = Sipp(tmp_path)
    sipp.runs += [fine, forgotten, unseen, meant]
    problems = await sipp.unchecked()
    assert forgotten.returncode is not None, "stopped at the end"
    assert [p.split(":")[0] for p in problems] == ["sipp phone_forgotten", "sipp caller_unseen"]
    assert "still running at the end" in problems[0] and "exited 1" in problems[1]


def test_a_softphone_registers_again_before_its_registration_expires() -> None:
    from callcenter.sipp import register_scenario

    once = register_scenario("1005", "secret-1", expires_s=600)
    assert "Expires: 600" in once and 'next="register"' not in once and "CSeq: 1 REGISTER" in once
    again = register_scenario("1005", "secret-1", expires_s=120, refresh_s=60)
    assert "Expires: 120" in again and "CSeq: [cseq] REGISTER" in again
    assert again.index('<pause milliseconds="60000"/>') < again.index('<nop next="register"/>')
    with pytest.raises(ValueError, match="refresh_s"):
        register_scenario("1005", "secret-1", expires_s=60, refresh_s=60)
