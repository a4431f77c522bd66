from dataclasses import dataclass, field
from pathlib import Path

import pytest

from patchkit.config import dump_yaml, from_dict, load_config, parse_overrides
from patchkit.errors import PatchkitError


@dataclass
class Inner:
    degrees: tuple[float, float] = (-20.0, 20.0)
    enabled: bool = True


@dataclass
class Outer:
    lr: float = 0.03
    epochs: int = 10
    name: str = "x"
    classes: list[int] = field(default_factory=lambda: [0])
    rotation: Inner = field(default_factory=Inner)
    printer: str | None = None


def test_precedence_defaults_file_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 0.1\nepochs: 5\nrotation: {degrees: [-5, 5]}\n")
    cfg = load_config(Outer, f, ["epochs=7", "rotation.enabled=false", "classes=[0,2]"])
    assert cfg.lr == 0.1 and cfg.epochs == 7
    assert cfg.rotation.degrees == (-5.0, 5.0) and cfg.rotation.enabled is False
    assert cfg.classes == [0, 2] and cfg.name == "x"


def test_unknown_key_suggests_nearest(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("rotation: {degres: [1, 2]}\n")
    with pytest.raises(PatchkitError) as e:
        load_config(Outer, f)
    msg = str(e.value)
    assert str(f) in msg and "rotation.degres" in msg and "did you mean 'rotation.degrees'" in msg
    assert "\n" not in msg


def test_wrong_type_names_key():
    with pytest.raises(PatchkitError, match="epochs.*integer"):
        from_dict(Outer, {"epochs": "ten"})
    with pytest.raises(PatchkitError, match="rotation.degrees.*2 values"):
        from_dict(Outer, {"rotation": {"degrees": [1, 2, 3]}})
    with pytest.raises(PatchkitError, match="enabled.*true or false"):
        from_dict(Outer, {"rotation": {"enabled": "yes please"}})


def test_bad_yaml_and_missing_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("a: [1, 2\n")
    with pytest.raises(PatchkitError, match="invalid YAML"):
        load_config(Outer, f)
    with pytest.raises(PatchkitError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_overrides_parse_and_roundtrip():
    assert parse_overrides(["a.b=1", "c=[1, 2]", "d=hello"]) == {"a": {"b": 1}, "c": [1, 2], "d": "hello"}
    with pytest.raises(PatchkitError):
        parse_overrides(["novalue"])
    cfg = from_dict(Outer, {"lr": 0.5, "printer": None})
    import yaml

    assert from_dict(Outer, yaml.safe_load(dump_yaml(cfg))) == cfg


EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize("recipe", sorted(p.name for p in EXAMPLES.glob("train_*.yaml")))
def test_every_shipped_recipe_loads_and_validates(recipe):
    """A typo in a published recipe (unknown key, bad value) fails here, not an hour into a run."""
    from patchkit.engine.config import TrainConfig

    cfg = load_config(TrainConfig, EXAMPLES / recipe)
    assert cfg.optim.lr > 0 and cfg.run.out
