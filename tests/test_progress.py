"""catsplit.progress: the stderr progress bar draws only on a terminal."""

import io

import catsplit
from catsplit.progress import Progress, progress

COARSE = "Pushing something"


def test_progress_is_silent_without_tty():
    buf = io.StringIO()
    with Progress(10, "x", stream=buf) as bar:
        bar.update(10)
    assert buf.getvalue() == ""
    assert list(progress(range(3), enabled=False)) == [0, 1, 2]


def test_progress_bar_draws_only_on_a_terminal(tuning_setup, monkeypatch):
    import io
    import sys

    tmp, path, edited, x, y = tuning_setup

    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    catsplit.finetune(edited, x, y, config=catsplit.FinetuneConfig(max_epochs=3), progress=True)
    assert quiet.getvalue() == ""
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    catsplit.finetune(edited, x, y, config=catsplit.FinetuneConfig(max_epochs=3), progress=True)
    assert "finetune [" in tty.getvalue() and "loss" in tty.getvalue()


def test_progress_on_a_terminal_counts_up_to_the_total():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    buf = Tty()
    with Progress(4, "work", stream=buf) as bar:
        for _ in range(4):
            bar.update(1)
    assert "work [" in buf.getvalue() and "4/4" in buf.getvalue()
