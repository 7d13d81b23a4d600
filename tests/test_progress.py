"""Progress of a bench: one log line per finished run, and a bar drawn only on a terminal."""

import io
import re

from bench import cli, runner
from bench import config as config_module
from bench.progress import Progress, ProgressBar, progress_display
from bench.seeds import derive_seed

TINY_TOML = """
[run]
repetitions = 2
methods = ["floor_mean"]
[signal]
sampling_rate_hz = 300
"""


class Terminal(io.StringIO):
    """A text stream that reports being a terminal."""

    def isatty(self):
        return True


class RecordingProgress(Progress):
    def __init__(self):
        self.events = []

    def planned(self, total):
        self.events.append(("planned", total))

    def started(self, run):
        self.events.append(("started", run.method, run.repetition))

    def finished(self, run, status, outcome):
        self.events.append(("finished", run.method, run.repetition, status, outcome))


def floor_config(tiny_overrides, **run):
    tiny_overrides["run"].update({"methods": ["floor_mean"], "repetitions": 2, **run})
    return config_module.load_config("quick", tiny_overrides)


def finished_lines(caplog):
    return [record.getMessage() for record in caplog.records
            if record.name == "bench.runner" and " seed " in record.getMessage()]


def test_finished_run_logged(tmp_path, tiny_overrides, caplog):
    config = floor_config(tiny_overrides)
    seed = derive_seed(config["run"]["base_seed"], "floor_mean", 1)
    caplog.set_level("INFO")
    runner.run_benchmark(config, "quick", tmp_path / "r")
    computed = finished_lines(caplog)
    caplog.clear()
    runner.run_benchmark(config, "quick", tmp_path / "r")
    reused = finished_lines(caplog)

    assert len(computed) == 2
    assert len(reused) == 2
    line = r"floor_mean repetition 1 seed {}: ok, {}, \d+\.\d\d s, run [0-9a-f]{{24}}$"
    assert re.match(line.format(seed, "computed"), computed[1]), computed[1]
    assert re.match(line.format(seed, "reused"), reused[1]), reused[1]
    assert all(record.levelname == "INFO" for record in caplog.records if record.name == "bench.runner")


def test_noisy_run_logged_with_level(tmp_path, tiny_overrides, caplog):
    config = floor_config(tiny_overrides, repetitions=1, noise_levels=[0.0, 0.01])
    caplog.set_level("INFO")
    runner.run_benchmark(config, "quick", tmp_path / "r")
    lines = finished_lines(caplog)
    assert len(lines) == 2
    assert sum(line.startswith("floor_mean repetition 0 seed ") for line in lines) == 1
    assert sum(line.startswith("floor_mean repetition 0 noise 0.01 seed ") for line in lines) == 1


def test_failed_run_logged_with_reason(tmp_path, tiny_overrides, caplog, monkeypatch):
    from bench.methods.reference import FloorMean

    def explode(self, task, upstream=None):
        raise RuntimeError("injected crash")

    monkeypatch.setattr(FloorMean, "fit", explode)
    caplog.set_level("INFO")
    runner.run_benchmark(floor_config(tiny_overrides, repetitions=1), "quick", tmp_path / "r")
    [line] = finished_lines(caplog)
    assert ": failed, computed, " in line
    assert line.endswith(": RuntimeError: injected crash")


def test_progress_told_of_every_run(tmp_path, tiny_overrides):
    config = floor_config(tiny_overrides)
    first, second = RecordingProgress(), RecordingProgress()
    runner.run_benchmark(config, "quick", tmp_path / "r", progress=first)
    runner.run_benchmark(config, "quick", tmp_path / "r", progress=second)
    assert first.events == [
        ("planned", 2),
        ("started", "floor_mean", 0), ("finished", "floor_mean", 0, "ok", "computed"),
        ("started", "floor_mean", 1), ("finished", "floor_mean", 1, "ok", "computed"),
    ]
    assert second.events == [
        ("planned", 2), ("finished", "floor_mean", 0, "ok", "reused"), ("finished", "floor_mean", 1, "ok", "reused"),
    ]


def test_worker_processes_report_progress(tmp_path, tiny_overrides, caplog):
    config = floor_config(tiny_overrides, workers=2)
    progress = RecordingProgress()
    caplog.set_level("INFO")
    runner.run_benchmark(config, "quick", tmp_path / "r", progress=progress)
    finished = sorted(event for event in progress.events if event[0] == "finished")
    assert finished == [
        ("finished", "floor_mean", 0, "ok", "computed"), ("finished", "floor_mean", 1, "ok", "computed"),
    ]
    assert len(finished_lines(caplog)) == 2


def test_no_bar_without_terminal(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    code = cli.main(["run", "--profile", "quick", "--config", str(tmp_path / "tiny.toml"),
                     "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 0
    assert "\r" not in err
    assert "run/s" not in err
    assert "2/2" not in err


def test_no_bar_on_pipe():
    with progress_display(io.StringIO()) as progress:
        assert type(progress) is Progress


def test_bar_drawn_on_terminal(tmp_path, tiny_overrides):
    terminal = Terminal()
    with progress_display(terminal) as progress:
        assert isinstance(progress, ProgressBar)
        runner.run_benchmark(floor_config(tiny_overrides), "quick", tmp_path / "r", progress=progress)
    drawn = terminal.getvalue()
    assert "bench: 100%" in drawn
    assert "2/2" in drawn
    assert "floor_mean r1" in drawn


def test_bar_forgets_late_start(tiny_config):
    _, planned = runner.plan_runs(tiny_config, ["floor_mean"])
    run = next(run for run in planned if run.method == "floor_mean")
    terminal = Terminal()
    bar = ProgressBar(terminal)
    bar.planned(1)
    bar.finished(run, "ok", "computed")
    bar.started(run)
    bar.close()
    last_frame = terminal.getvalue().rsplit("\r", 1)[-1]
    assert "1/1" in last_frame
    assert "floor_mean r0" not in last_frame
