"""One CLI grammar: every command takes -o/--out, --json and --quiet (and --device where a model
runs), usage errors are one line, and help texts carry no markup or dead references."""

from __future__ import annotations

import argparse

import pytest

from patchkit.cli.main import SUBCOMMANDS, build_parser, main

MODEL_COMMANDS = {"demo", "detect", "train", "score", "evaluate", "toyworld train-detector"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    out = {}
    root = build_parser()
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                if nested:
                    out.update({f"{name} {n}": s for n, s in nested[0].choices.items()})
                else:
                    out[name] = sub
    return out


COMMANDS = _commands()


def test_every_command_is_listed():
    assert set(SUBCOMMANDS) <= {c.split()[0] for c in COMMANDS}
    assert len(COMMANDS) >= 12


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_speaks_the_same_options(name):
    options = {o for a in COMMANDS[name]._actions for o in a.option_strings}
    assert {"-o", "--out", "--json", "--quiet"} <= options, name
    if name in MODEL_COMMANDS:
        assert "--device" in options
    helps = [COMMANDS[name].description or ""] + [a.help or "" for a in COMMANDS[name]._actions]
    for text in helps:
        assert "``" not in text and "docs/" not in text and ":class:" not in text, text
    assert "%%" not in (COMMANDS[name].description or "")
    assert all(a.help for a in COMMANDS[name]._actions if a.option_strings and a.dest != "help"), name


@pytest.mark.parametrize("argv", [["evaluate", "--scene", "x"], ["score"], ["chart", "--bogus", "1"],
                                  ["toyworld", "video"]])
def test_usage_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("patchkit") and "error:" in err[0]


def test_export_takes_the_patch_either_way_and_a_folder_as_out(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(tmp_path / "p.png")
    assert main(["export", "--patch", str(tmp_path / "p.png"), "--width-mm", "50", "-o", str(tmp_path / "out"),
                 "--json", str(tmp_path / "layout.json"), "--quiet"]) == 0
    assert (tmp_path / "out" / "p.pdf").is_file() and (tmp_path / "layout.json").is_file()
    assert main(["export", str(tmp_path / "p.png"), "--patch", str(tmp_path / "q.png"), "--width-mm", "50",
                 "-o", str(tmp_path / "x.pdf")]) == 2
    assert "two patches given" in capsys.readouterr().err


def test_export_random_writes_the_control_print_at_the_patch_size_with_its_markers(tmp_path):
    import json

    from PIL import Image

    Image.new("RGB", (40, 40), (200, 40, 40)).save(tmp_path / "p.png")
    common = ["--width-mm", "60", "--markers", "--quiet"]
    assert main(["export", str(tmp_path / "p.png"), *common, "-o", str(tmp_path / "patch.pdf")]) == 0
    assert main(["export", str(tmp_path / "p.png"), "--random", *common, "-o", str(tmp_path)]) == 0
    patch = json.loads((tmp_path / "patch.json").read_text())
    control = json.loads((tmp_path / "p_random.json").read_text())
    assert (tmp_path / "p_random.pdf").is_file()
    assert control["size_mm"] == patch["size_mm"] and control["pixels"] == patch["pixels"]
    assert control.get("markers") == patch.get("markers")
    assert "random noise" in json.dumps(control)


def test_no_command_replaces_earlier_results(tmp_path, capsys):
    out = tmp_path / "chart"
    assert main(["chart", "-o", str(out), "--quiet"]) == 0
    before = (out / "chart.json").read_bytes()
    assert main(["chart", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds results" in err[0] and "--exist-ok" in err[0] and str(out) in err[0]
    assert (out / "chart.json").read_bytes() == before
    assert main(["chart", "-o", str(out), "--exist-ok", "--quiet"]) == 0
    assert (tmp_path / "chart-2" / "chart.json").is_file()
    # a file output gets NAME-2.pdf
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "p.png")
    for _ in range(2):
        assert main(["export", str(tmp_path / "p.png"), "--width-mm", "40", "-o", str(tmp_path / "p.pdf"),
                     "--exist-ok", "--quiet"]) == 0
    assert (tmp_path / "p.pdf").is_file() and (tmp_path / "p-2.pdf").is_file()
