from __future__ import annotations

import pytest

from geolabel.labels.schema import ClassSchema, SchemaError, default_schema, load_schema


def test_default_schema_classes_priorities_and_chinese_names():
    schema = default_schema()
    assert [c.name for c in schema][:7] == [
        "unclassified",
        "water",
        "farmland",
        "building",
        "road",
        "forest",
        "grassland",
    ]
    assert "bare_land" in {c.name for c in schema}
    p = schema.priority
    assert p(1) > p(3) > p(4) > p(2) > p(5) > p(6) > p(7) > p(0)  # water > building > road > farmland ...
    assert schema.resolve("水体").code == 1 and schema.get(2).label("zh") == "耕地"
    assert schema.resolve(" Farmland ").code == 2 and schema.resolve("2").code == 2 and schema.resolve(2.0).code == 2
    assert schema.resolve("bare land").code == 7


def test_unknown_class_lists_the_known_ones():
    with pytest.raises(Exception, match=r"unknown class 'wetland'; known classes: 0=unclassified, 1=water"):
        default_schema().resolve("wetland")
    assert default_schema().find(99) is None


def test_toml_schema_extends_default(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "hunan"\nextends = "default"\n\n[[classes]]\ncode = 8\nname = "greenhouse"\n'
        'color = "#D9D9D9"\npriority = 65\nnames = { zh = "大棚" }\n\n'
        '[[classes]]\ncode = 1\nname = "water"\ncolor = "#0000ff"\npriority = 90\n',
        encoding="utf-8",
    )
    schema = load_schema(path)
    assert schema.name == "hunan" and len(schema) == 9
    assert schema.resolve("大棚").code == 8 and schema.get(8).color == "#d9d9d9"
    assert schema.priority(3) > schema.priority(8) > schema.priority(4)
    assert schema.get(1).priority == 90 and schema.get(1).names == {}  # replaced, not merged


def test_json_schema_replaces_default(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"classes": [{"code": 1, "name": "water", "color": "#0000ff", "priority": 5}]}')
    schema = load_schema(path)
    assert schema.codes == [1]
    assert ClassSchema.from_json(schema.to_json()) == schema


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[classes]]\ncode = 1\nname = "water"\ncolor = "blue"\n', r"classes\[0\]\.color: 'blue' must be '#rrggbb'"),
        ('[[classes]]\ncode = 300\nname = "water"\n', r"classes\[0\]\.code: 300 must be an integer from 0 to 254"),
        ('[[classes]]\ncode = 1\nname = "Water Body"\n', r"classes\[0\]\.name: 'Water Body' must be lower-case"),
        ('[[classes]]\ncode = 1\nname = "a"\n[[classes]]\ncode = 1\nname = "b"\n', "class code 1 is used twice"),
        ('[[classes]]\ncode = 1\nname = "a"\nprioity = 3\n', r"classes\[0\]\.prioity: unknown key"),
        ('[[classes]]\nname = "a"\n', r"classes\[0\]: missing key 'code'"),
        ('extends = "osm"\n[[classes]]\ncode = 1\nname = "a"\n', "only 'default' can be extended"),
        ('[[classes]]\ncode = 1\nname = "a"\ncolor = "#ffffff"\n\n[broken\n', r"line 6"),
    ],
)
def test_schema_errors_name_the_file_and_key_or_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message) as info:
        load_schema(path)
    assert str(path) in str(info.value)


def test_json_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "classes": [\n    {"code": 1,}\n  ]\n}')
    with pytest.raises(SchemaError, match=r"bad\.json: line 3"):
        load_schema(path)
