import json

import pytest
from typer.testing import CliRunner

from spotid.cli import app
from spotid.modelstore import ModelError, load_card, resolve, write_card


def _model(folder, kind="embedder", payload=b"weights"):
    folder.mkdir(parents=True)
    (folder / "w.pt").write_bytes(payload)
    return write_card(folder, name=f"test-{kind}", kind=kind, weights="w.pt", input_size=[64, 64])


def test_card_roundtrip_and_version(tmp_path):
    card = _model(tmp_path / "m")
    again = load_card(tmp_path / "m" / "w.pt", verify=True)
    assert again == card and again.version.startswith("test-embedder@") and len(again.version.split("@")[1]) == 12
    assert again.get("input_size") == [64, 64]


def test_tampered_weights_refused(tmp_path):
    _model(tmp_path / "m")
    assert resolve("embedder", tmp_path / "m").name == "test-embedder"
    (tmp_path / "m" / "w.pt").write_bytes(b"other")
    with pytest.raises(ModelError, match="sha256"):
        load_card(tmp_path / "m", verify=True)
    # the stages load their models through resolve: a damaged copy is refused there too, with the fix
    with pytest.raises(ModelError, match="sha256 in its card .*copy the model folder again"):
        resolve("embedder", tmp_path / "m")


@pytest.mark.parametrize("text", ['{"name": "x"', "[1, 2]", "\udcff"])
def test_a_card_that_is_no_json_object_is_a_model_error(tmp_path, text):
    """A card cut short by a copy, or a hand edit gone wrong, is named with the fix, not a traceback."""
    _model(tmp_path / "m")
    (tmp_path / "m" / "card.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelError, match="card.json .*re-export the model"):
        load_card(tmp_path / "m")


def test_models_use_switches_active_model(tmp_path):
    card = _model(tmp_path / "m")
    db = tmp_path / "c.db"
    r = CliRunner().invoke(app, ["models", "use", str(tmp_path / "m"), "--db", str(db)])
    assert r.exit_code == 0, r.output
    from spotid.catalog import Catalog

    with Catalog(db) as cat:
        assert resolve("embedder", catalog=cat) == card
    r = CliRunner().invoke(app, ["models", "list", "--db", str(db), "--json"])
    rows = [x for x in json.loads(r.stdout) if x["kind"] == "embedder"]
    assert rows[0]["active"] and rows[0]["source"] == "catalog" and rows[0]["version"] == card.version


def test_models_use_refuses_wrong_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["models", "use", str(tmp_path / "empty"), "--db", str(tmp_path / "c.db")])
    assert r.exit_code != 0 and "card.json" in r.output
