"""``tuxai drift``'s pure parts: the gauges read back from /metrics, the episodes --on-drift runs once for."""

from __future__ import annotations

from tuxai.cli.drift import Episodes, VersionDrift, read_drift, render

METRICS = """\
tuxai_serve_requests_total{model="digits",version="2",code="200"} 30
tuxai_serve_drift{model="digits",version="2"} 1
tuxai_serve_drift{model="other",version="1"} 0
tuxai_serve_drift_psi{model="digits",version="2",feature="x[36]"} 0.41
tuxai_serve_drift_psi{model="digits",version="2",feature="x[\\"q\\"]"} 0.02
tuxai_serve_drift_psi{model="digits",version="2",feature="x[7]"} 0.3
tuxai_serve_drift_js{model="digits",version="2",feature="x[36]"} 0.22
tuxai_serve_drift_windows_total{model="digits",version="2"} 7
"""


def test_the_gauges_of_one_model_are_read_by_version_with_escaped_labels() -> None:
    found = read_drift(METRICS, "digits")
    assert list(found) == ["2"]
    reading = found["2"]
    assert reading.drifted and reading.windows == 7 and reading.js == {"x[36]": 0.22}
    assert reading.psi == {"x[36]": 0.41, 'x["q"]': 0.02, "x[7]": 0.3}
    assert reading.features() == ["x[36]", "x[7]"]
    assert read_drift(METRICS, "nothing") == {}


def test_the_verdict_is_drawn_drifted_features_first() -> None:
    text = render("digits", read_drift(METRICS, "digits"))
    lines = text.splitlines()
    assert lines[0] == "model digits version 2: drift on x[36], x[7] (last of 7 windows)"
    assert [line.split()[0] for line in lines[2:]] == ["x[36]", "x[7]", 'x["q"]']
    assert lines[2].split()[1:] == ["0.410", "0.220", "drift"]
    assert "no drift window closed yet" in render("digits", {})


def test_on_drift_runs_once_per_episode_and_only_on_a_new_window() -> None:
    episodes = Episodes()
    seen = []
    # (windows closed, drifted) as successive reads see them: the same window read twice counts once.
    for windows, drifted in [(1, False), (2, True), (2, True), (3, True), (4, False), (5, True), (6, True)]:
        started = episodes.starts({"2": VersionDrift("2", drifted, windows)})
        seen.append(len(started))
    assert seen == [0, 1, 0, 0, 0, 1, 0]
