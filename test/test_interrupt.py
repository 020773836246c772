"""cli/interrupt.py: SIGINT / SIGTERM become a stop request honoured at check(); a second signal stops at once;
the previous handlers come back."""

from __future__ import annotations

import os
import signal

import pytest

from xsim_render.cli.interrupt import Stopped, StopSignals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_is_a_request_second_stops_now_handlers_restored(sig, capfd):
    before = signal.getsignal(sig)
    with StopSignals("xsim test") as signals:
        signals.check()  # nothing requested: no raise
        os.kill(os.getpid(), sig)
        assert signals.requested and signals.signum == sig
        with pytest.raises(Stopped) as first:
            signals.check()
        assert first.value.signum == sig and isinstance(first.value, KeyboardInterrupt)
        with pytest.raises(Stopped) as second:
            os.kill(os.getpid(), sig)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
        assert second.value.signum == sig
    assert signal.getsignal(sig) is before
    assert f"xsim test: {sig.name}: stopping at the next safe point" in capfd.readouterr().err


def test_cli_exit_codes_for_stops(monkeypatch):
    import argparse
    from types import SimpleNamespace

    from xsim_render.cli import main as cli

    def stopped(args):
        raise Stopped(signal.SIGTERM)

    parsed = argparse.Namespace(command="replay", func=stopped)
    monkeypatch.setattr(cli, "build_parser", lambda: SimpleNamespace(parse_args=lambda argv: parsed))
    assert cli.main(["replay"]) == 143
