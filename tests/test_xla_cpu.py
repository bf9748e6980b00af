"""The XLA:CPU settings made at import: added where they can take effect, never over the user's."""

from __future__ import annotations

import os
import subprocess
import sys

from policysearch import xla_cpu


def test_added_when_unset_and_kept_out_where_the_user_chose(monkeypatch) -> None:
    monkeypatch.setattr(xla_cpu, "_backend_started", lambda: False)
    small_loops, scheduler = xla_cpu.OPTIONS.values()
    env: dict[str, str] = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    assert xla_cpu.configure(env) == [small_loops, scheduler]
    assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {small_loops} {scheduler}"
    assert xla_cpu.configure(env) == [] and env["XLA_FLAGS"].count("--") == 3  # nothing twice
    theirs = {"XLA_FLAGS": "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=5"}
    assert xla_cpu.configure(theirs) == [scheduler] and theirs["XLA_FLAGS"].split()[0].endswith("=5")
    theirs = {"XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
    assert xla_cpu.configure(theirs) == [small_loops] and "scheduler=true" in theirs["XLA_FLAGS"]
    assert "scheduler=false" not in theirs["XLA_FLAGS"]
    off = {"POLICYSEARCH_XLA_DEFAULTS": "0"}
    assert xla_cpu.configure(off) == [] and "XLA_FLAGS" not in off
    monkeypatch.setattr(xla_cpu, "_backend_started", lambda: True)
    late: dict[str, str] = {}
    assert xla_cpu.configure(late) == [] and "XLA_FLAGS" not in late


def _flags_after_import(env: dict[str, str], before: str = "") -> str:
    code = f"{before}import os, policysearch; print(os.environ.get('XLA_FLAGS', ''))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def test_a_fresh_process_gets_the_setting_unless_jax_already_started() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "POLICYSEARCH_XLA_DEFAULTS")}
    assert _flags_after_import(env) == " ".join(xla_cpu.OPTIONS.values())
    # a backend started before the import has read XLA_FLAGS already: nothing is claimed
    assert _flags_after_import(env, "import jax.numpy as jnp; jnp.ones(1); ") == ""
