"""A GeoPackage store on a network file system is refused (SQLite locks do not hold there)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from geolabel import files
from geolabel.cli import main
from geolabel.errors import InputError
from geolabel.labels.store import create_store, open_store


@pytest.fixture
def mounted(monkeypatch, tmp_path):
    """``mounted(type)``: tmp_path is a mount point of that file system type from now on."""

    def mount(fstype, *, inner=None):
        table = [("/", "ext4"), (str(tmp_path.resolve()), fstype)]
        if inner:
            table.append((str((tmp_path / inner).resolve()), "ext4"))
        monkeypatch.setattr(files, "read_mount_table", lambda: table)

    monkeypatch.delenv("GEOLABEL_ALLOW_NETWORK_GPKG", raising=False)
    return mount


@pytest.mark.parametrize("fstype", ["nfs4", "cifs", "fuse.sshfs", "9p"])
def test_a_store_on_a_network_folder_is_refused(mounted, tmp_path, fstype):
    mounted(fstype)
    with pytest.raises(InputError, match=rf"network file system \({fstype}\).*PostGIS store"):
        create_store(tmp_path / "labels.gpkg", crs="EPSG:32649")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_store_is_refused_once_its_folder_is_a_network_one(mounted, tmp_path):
    create_store(tmp_path / "labels.gpkg", crs="EPSG:32649").close()
    mounted("nfs")
    with pytest.raises(InputError, match="GEOLABEL_ALLOW_NETWORK_GPKG=1"):
        open_store(tmp_path / "labels.gpkg")


def test_the_variable_allows_it_and_local_mounts_inside_are_fine(mounted, tmp_path, monkeypatch):
    mounted("nfs4", inner="local")
    (tmp_path / "local").mkdir()
    create_store(tmp_path / "local" / "labels.gpkg", crs="EPSG:32649").close()  # longest mount point wins
    monkeypatch.setenv("GEOLABEL_ALLOW_NETWORK_GPKG", "1")
    with create_store(tmp_path / "labels.gpkg", crs="EPSG:32649") as st:
        assert st.count() == 0


def test_the_command_line_says_it_in_one_line(mounted, tmp_path):
    mounted("smb3")
    res = CliRunner().invoke(main, ["labels", "init", str(tmp_path / "labels.gpkg"), "--crs", "EPSG:32649"])
    errors = [line for line in res.output.splitlines() if line.startswith("geolabel: error:")]
    assert res.exit_code == 2 and len(errors) == 1 and "network file system (smb3)" in errors[0]


def test_mount_points_with_spaces_are_read():
    table = files.parse_mountinfo(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /mnt/team\\040share rw,relatime shared:7 - cifs //srv/share rw\n"
    )
    assert table == [("/", "ext4"), ("/mnt/team share", "cifs")]


def test_a_copy_into_a_network_folder_is_refused_naming_the_destination(mounted, tmp_path):
    from geolabel.labels.copy import copy_store

    (tmp_path / "local").mkdir()
    create_store(tmp_path / "local" / "labels.gpkg", crs="EPSG:32649").close()
    mounted("nfs4", inner="local")
    with pytest.raises(InputError, match=rf"^{tmp_path / 'copy.gpkg'}: is on a network file system"):
        copy_store(tmp_path / "local" / "labels.gpkg", tmp_path / "copy.gpkg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local"]
