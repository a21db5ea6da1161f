import dataclasses
from datetime import timedelta

import pytest
import yaml

from spotid.config import load_config, save_config
from spotid.util import atomic_write_text, format_tz, parse_tz


@pytest.mark.parametrize(
    "text, minutes",
    [("+10:00", 600), ("-05:30", -330), ("+0930", 570), ("UTC+3", 180), ("Z", 0), ("utc", 0), ("-3", -180)],
)
def test_parse_tz(text, minutes):
    assert parse_tz(text).utcoffset(None) == timedelta(minutes=minutes)


@pytest.mark.parametrize("bad", ["Vladivostok", "+25:00", "10", "+10:75"])
def test_parse_tz_rejects_with_fix(bad):
    with pytest.raises(ValueError, match="use an offset|offsets run"):
        parse_tz(bad)


def test_format_tz_roundtrip():
    assert format_tz(parse_tz("+10:00")) == "+10:00"
    assert format_tz(parse_tz("-05:30")) == "-05:30"
    assert parse_tz(None) is None and format_tz(None) is None


@dataclasses.dataclass(frozen=True)
class _Cfg:
    gap: float = 60.0
    name: str = "x"
    sizes: tuple = (1, 2)


def test_load_config_layers(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("gap: 30\nsizes: [3, 4]\n")
    cfg = load_config(_Cfg, f, name="y", gap=None)
    assert cfg == _Cfg(gap=30, name="y", sizes=(3, 4))
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(_Cfg, None, gapp=1)
    out = save_config(cfg, tmp_path / "out" / "resolved.yaml")
    assert yaml.safe_load(out.read_text()) == {"gap": 30, "name": "y", "sizes": [3, 4]}


@dataclasses.dataclass(frozen=True)
class _Typed:
    gap: float = 60.0
    floor: int = 12
    on: bool = True
    window: float | None = None
    sizes: tuple = (1, 2)


def test_a_word_where_a_number_belongs_names_the_setting():
    # without the check this failed later as "'<' not supported between instances of 'str' and 'int'"
    with pytest.raises(ValueError, match=r"floor='many': use a whole number \(default: 12\)"):
        load_config(_Typed, None, floor="many")
    with pytest.raises(ValueError, match=r"window='ten': use a number or null"):
        load_config(_Typed, None, window="ten")
    with pytest.raises(ValueError, match="on=1: use true or false"):
        load_config(_Typed, None, on=1)
    with pytest.raises(ValueError, match="floor=2.5"):
        load_config(_Typed, None, floor=2.5)
    # YAML reads 1e-3 as text; an int is a float; None where null is allowed; other types unchecked
    cfg = load_config(_Typed, None, gap="1e-3", window=10, sizes=["a"])
    assert (cfg.gap, cfg.window, cfg.sizes, cfg.floor) == (0.001, 10, ("a",), 12)


def test_the_shipped_configs_pass_the_type_check():
    from spotid.census.config import CensusConfig
    from spotid.config import resolve_config
    from spotid.detect.config import DetectConfig
    from spotid.identify.config import IdentifyConfig

    for cls in (CensusConfig, DetectConfig, IdentifyConfig):
        assert resolve_config(cls) == cls()


def test_atomic_write_leaves_no_temp(tmp_path):
    p = atomic_write_text(tmp_path / "a.txt", "hello")
    assert p.read_text() == "hello"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_parse_setting_reads_values_as_yaml():
    from spotid.config import parse_setting

    assert parse_setting("pair_seconds=null") == ("pair_seconds", None)
    assert parse_setting(" threshold =0.5") == ("threshold", 0.5)
    assert parse_setting("descriptor=rootsift+vgg") == ("descriptor", "rootsift+vgg")
    assert parse_setting("note=a=b") == ("note", "a=b")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_setting("descriptor")
