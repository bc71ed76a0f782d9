"""Retrain status lines."""

from __future__ import annotations

from bot.cogs.admin import progress_text


def test_retrain_progress_line_shows_epoch_and_loss():
    line = progress_text(
        3, {"event": "epoch", "member": 0, "epoch": 2, "epochs": 8, "loss": 6.3668, "val_loss": 6.1}
    )
    assert line == "🛠️ Retrain #3 running: member 0, epoch 2/8, loss 6.3668, val_loss 6.1000"
    assert "scoring the new models" in progress_text(3, {"event": "evaluate_new"})
