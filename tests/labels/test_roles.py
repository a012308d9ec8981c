"""Who may do what in a PostGIS project: teams, roles and row-level security, checked through
geolabel and through plain SQL connections as the members themselves (logins with passwords,
as on a real server)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import AccessDeniedError, InputError, UnreachableError
from geolabel.labels.pg_location import parse_location
from geolabel.labels.pg_store import PostGISStore
from geolabel.labels.store import create_store, open_store
from geolabel.labels.team import add_member, list_members, remove_member

from ..conftest import new_pg_location


def login(location: str, user: str, password: str) -> str:
    """``location`` with ``user`` and ``password`` instead of the tests' superuser."""
    parts = urlsplit(location)
    netloc = f"{quote(user)}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def box(i: int) -> shapely.Polygon:
    x, y = 686400.0 + 20 * i, 3120900.0
    return shapely.box(x, y, x + 10, y + 10)


@dataclass
class Project:
    """A project created by the superuser (its owner) with four members."""

    location: str
    schema: str
    users: dict[str, str]  # labeler_a, labeler_b, reviewer_a, admin -> login role
    passwords: dict[str, str]

    def url(self, who: str) -> str:
        return login(self.location, self.users[who], self.passwords[who])

    def open(self, who: str) -> PostGISStore:
        store = open_store(self.url(who))
        assert isinstance(store, PostGISStore)
        return store

    def sql(self, who: str) -> psycopg.Connection:
        """A plain autocommit connection as member ``who`` (what psql or QGIS would have)."""
        return psycopg.connect(
            login(self.location.split("?")[0], self.users[who], self.passwords[who]), autocommit=True
        )

    def owner(self) -> PostGISStore:
        store = open_store(self.location)
        assert isinstance(store, PostGISStore)
        return store

    def label(self, label_id: str) -> dict:
        """A label as the owner reads it back."""
        with self.owner() as st:
            frame = st.query(label_ids=[label_id])
        assert len(frame) == 1
        row = frame.iloc[0]
        return {
            "status": row.status,
            "comment": row.comment,
            "version": row.version,
            "team": row.team,
            "geom": row.geometry,
        }

    def add(self, *, team: str, status: str = "draft", n: int = 1) -> list[str]:
        """Labels added by the owner (bypasses row-level security)."""
        with self.owner() as st:
            return st.add_geometries([box(i) for i in range(n)], class_codes=[1] * n, team=team, status=status)


MEMBERS = {"labeler_a": ("labeler", "A"), "labeler_b": ("labeler", "B"), "reviewer_a": ("reviewer", "A"),
           "admin": ("admin", None)}  # fmt: skip


def make_project(pg_database: str) -> Project:
    location = new_pg_location(pg_database, "roles")
    create_store(location, crs="EPSG:32649").close()
    tag = uuid.uuid4().hex[:6]
    users = {who: f"{who}_{tag}" for who in MEMBERS}
    passwords = {who: secrets.token_urlsafe(12) for who in MEMBERS}
    for who, (role, team) in MEMBERS.items():
        add_member(location, users[who], role=role, team=team, password=passwords[who])
    return Project(location, location.rsplit("schema=", 1)[1], users, passwords)


@pytest.fixture(scope="module")
def project(pg_database) -> Project:
    return make_project(pg_database)


# -- labelers: their own team's labels only ----------------------------------------------------


def test_labeler_cannot_change_or_delete_another_teams_label_through_geolabel(project):
    (theirs,), (mine,) = project.add(team="B"), project.add(team="A")
    with project.open("labeler_a") as st:
        with pytest.raises(AccessDeniedError, match=f"label {theirs}: your role may not make this change"):
            st.update(theirs, comment="mine now")
        with pytest.raises(AccessDeniedError, match=f"label {theirs}: your role may not make this change"):
            st.update(theirs, expected_version=1, geometry=box(5))
        with pytest.raises(AccessDeniedError, match=f"label {theirs}: your role may not delete it"):
            st.delete([theirs])
        with pytest.raises(AccessDeniedError, match=f"label {theirs}: your role may not change it"):
            st.replace_geometries([(mine, box(6)), (theirs, box(6))])
        with pytest.raises(AccessDeniedError, match=f"label {theirs}: your role may not delete it"):
            st.delete([mine, theirs])
    assert AccessDeniedError("x").exit_code == 77
    after = project.label(theirs)
    assert (after["version"], after["comment"], after["team"]) == (1, None, "B")
    assert after["geom"].equals(box(0))
    assert project.label(mine)["version"] == 1 and project.label(mine)["geom"].equals(box(0))  # all or nothing


def test_labeler_cannot_change_or_delete_another_teams_label_through_sql(project):
    (theirs,) = project.add(team="B")
    with project.sql("labeler_a") as conn:
        s = project.schema
        changed = conn.execute(f"UPDATE {s}.labels SET comment = 'x', team = 'A' WHERE label_id = %s", (theirs,))
        assert changed.rowcount == 0
        assert conn.execute(f"DELETE FROM {s}.labels WHERE label_id = %s", (theirs,)).rowcount == 0
        assert conn.execute(f"SELECT count(*) FROM {s}.labels WHERE label_id = %s", (theirs,)).fetchone() == (1,)
    after = project.label(theirs)
    assert (after["version"], after["comment"], after["team"]) == (1, None, "B")


def test_labeler_edits_and_deletes_own_teams_labels(project):
    mine, gone = project.add(team="A", n=2)
    with project.open("labeler_a") as st:
        assert st.update(mine, expected_version=1, geometry=box(7), status="submitted") == 2
        assert st.delete([gone]) == 1
    after = project.label(mine)
    assert after["status"] == "submitted" and after["geom"].equals(box(7))


def test_labeler_cannot_give_accepted_by_insert_or_update(project):
    (mine,) = project.add(team="A")
    with project.open("labeler_a") as st:
        before = st.count()
        with pytest.raises(AccessDeniedError, match="your role may not add these labels"):
            st.add_geometries([box(1)], class_codes=[1], status="accepted")
        for status in ("accepted", "rejected", "reviewed"):
            with pytest.raises(AccessDeniedError, match=f"label {mine}: your role may not make this change"):
                st.update(mine, status=status)
        assert st.count() == before
    with project.sql("labeler_a") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
        conn.execute(f"UPDATE {project.schema}.labels SET status = 'accepted' WHERE label_id = %s", (mine,))
    assert project.label(mine)["status"] == "draft" and project.label(mine)["version"] == 1


def test_labeler_cannot_touch_an_accepted_label_but_reworks_a_rejected_one(project):
    accepted, rejected = project.add(team="A", status="accepted")[0], project.add(team="A", status="rejected")[0]
    with project.open("labeler_a") as st:
        with pytest.raises(AccessDeniedError, match=f"label {accepted}"):
            st.update(accepted, status="draft")
        with pytest.raises(AccessDeniedError, match=f"label {accepted}"):
            st.delete([accepted])
        assert st.update(rejected, geometry=box(3), status="submitted") == 2
    assert project.label(accepted)["status"] == "accepted" and project.label(accepted)["version"] == 1
    assert project.label(rejected)["status"] == "submitted"


def test_labeler_adds_only_for_own_team_and_empty_team_and_labeler_are_filled_in(project):
    with project.open("labeler_a") as st:
        (added,) = st.add_geometries([box(2)], class_codes=[1])
        with pytest.raises(AccessDeniedError, match="may not add"):
            st.add_geometries([box(2)], class_codes=[1], team="B")
        frame = st.query(label_ids=[added])
    assert (frame.team[0], frame.labeler[0], frame.status[0]) == ("A", project.users["labeler_a"], "draft")
    with project.sql("labeler_a") as conn:  # as QGIS saves a new polygon: only geometry and class
        row = conn.execute(
            f"INSERT INTO {project.schema}.labels (geom, class_code, team, labeler) "
            "VALUES (ST_GeomFromText('POLYGON((686400 3120900, 686410 3120900, 686410 3120910, 686400 3120900))', "
            "32649), 1, '', NULL) RETURNING team, labeler, status, version, class_name"
        ).fetchone()
    assert row == ("A", project.users["labeler_a"], "draft", 1, "water")


# -- reviewers: status and comment of their own team -------------------------------------------


def test_reviewer_accepts_own_teams_labels_only(project):
    (ours,), (theirs,) = project.add(team="A", status="submitted"), project.add(team="B", status="submitted")
    with project.open("reviewer_a") as st:
        assert st.update(ours, expected_version=1, status="accepted", comment="good") == 2
        with pytest.raises(AccessDeniedError, match=f"label {theirs}"):
            st.update(theirs, status="accepted")
    assert (project.label(ours)["status"], project.label(ours)["comment"]) == ("accepted", "good")
    assert project.label(theirs)["status"] == "submitted"


def test_reviewer_cannot_change_geometry_or_class_add_or_delete(project):
    (ours,) = project.add(team="A", status="submitted")
    with project.open("reviewer_a") as st:
        with pytest.raises(AccessDeniedError, match=f"label {ours}"):
            st.update(ours, geometry=box(9))
        with pytest.raises(AccessDeniedError, match=f"label {ours}"):
            st.update(ours, class_code=2)
        with pytest.raises(AccessDeniedError, match=f"label {ours}"):
            st.delete([ours])
        with pytest.raises(AccessDeniedError, match="may not add"):
            st.add_geometries([box(1)], class_codes=[1], team="A")
    with project.sql("reviewer_a") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"UPDATE {project.schema}.labels SET geom = ST_Translate(geom, 5, 0) WHERE label_id = %s", (ours,))
    after = project.label(ours)
    assert after["geom"].equals(box(0)) and after["version"] == 1


# -- admins: everything --------------------------------------------------------------------------


def test_admin_changes_deletes_and_adds_for_every_team(project):
    a, b = project.add(team="A", status="accepted")[0], project.add(team="B")[0]
    with project.open("admin") as st:
        assert st.update(a, geometry=box(4), status="rejected", comment="redo") == 2
        assert st.update(b, status="accepted", team="A") == 2
        (added,) = st.add_geometries([box(1)], class_codes=[1], team="B", status="accepted")
        assert st.delete([added]) == 1
    with project.sql("admin") as conn:
        conn.execute(f"UPDATE {project.schema}.geolabel_classes SET color = '#000000' WHERE code = 1")
    assert project.label(a)["geom"].equals(box(4)) and project.label(b)["team"] == "A"
    with project.owner() as st:
        assert st.query(label_ids=[added]).empty


# -- what nobody but the owner writes -------------------------------------------------------


@pytest.mark.parametrize("who", ["labeler_a", "reviewer_a"])
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO {s}.geolabel_classes VALUES (99, 'x', '#000000', 1, NULL)",
        "UPDATE {s}.geolabel_classes SET priority = 1",
        "DELETE FROM {s}.geolabel_meta",
        "UPDATE {s}.geolabel_meta SET value = 'x' WHERE key = 'crs'",
        "INSERT INTO {s}.geolabel_members VALUES ('someone', 'A', 'admin')",
        "UPDATE {s}.geolabel_members SET role = 'admin'",
        "INSERT INTO {s}.geolabel_history (label_id, action, db_role, changed_at) VALUES ('x', 'insert', 'x', now())",
        "DELETE FROM {s}.geolabel_history",
    ],
)
def test_classes_meta_members_and_history_are_read_only_to_members(project, who, statement):
    with project.sql(who) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.format(s=project.schema))
        assert conn.execute(f"SELECT count(*) FROM {project.schema}.geolabel_classes").fetchone()[0] >= 8


def test_a_labeler_cannot_forge_history_through_a_trigger_of_their_own(project):
    s = project.schema
    with project.sql("labeler_a") as conn:
        conn.execute("CREATE TEMP TABLE fake (label_id text, labeler text, version integer)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"CREATE TRIGGER f AFTER INSERT ON fake FOR EACH ROW EXECUTE FUNCTION {s}.geolabel_record()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT {s}.geolabel_record()")


def test_set_role_to_a_group_gives_no_team_and_no_rights(project):
    (mine,) = project.add(team="A")
    with project.open("labeler_a") as st:
        labeler_group = st.groups["labeler"]
        admin_group = st.groups["admin"]
    with project.sql("labeler_a") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SET ROLE "{admin_group}"')
        conn.execute(f'SET ROLE "{labeler_group}"')
        changed = conn.execute(f"UPDATE {project.schema}.labels SET comment = 'x' WHERE label_id = %s", (mine,))
        assert changed.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            conn.execute(
                f"INSERT INTO {project.schema}.labels (geom, class_code, team) VALUES "
                "(ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 32649), 1, 'A')"
            )
    assert project.label(mine)["comment"] is None


def test_history_names_the_login_that_made_each_change(project):
    (label,) = project.add(team="A")
    with project.open("labeler_a") as st:
        st.update(label, geometry=box(8), status="submitted")
    with project.open("reviewer_a") as st:
        st.update(label, status="accepted")
    with project.owner() as st:
        history = st.history(label_id=label)
    assert [(e.action, e.db_role, e.new_version) for e in history] == [
        ("insert", "postgres", 1),
        ("update", project.users["labeler_a"], 2),
        ("update", project.users["reviewer_a"], 3),
    ]


def test_every_member_records_tile_progress(project):
    for who in ("labeler_a", "reviewer_a"):
        with project.open(who) as st:
            st.set_tile_status(f"tile_{who}", "done", labeler=project.users[who])
    with project.owner() as st:
        statuses = st.tile_statuses()
    assert statuses["tile_labeler_a"] == "done" and statuses["tile_reviewer_a"] == "done"


# -- members -------------------------------------------------------------------------------------


def test_re_adding_changes_team_and_role_and_removing_ends_membership(pg_database):
    project = make_project(pg_database)
    user = project.users["labeler_b"]
    add_member(project.location, user, role="reviewer", team="A")
    members = {m.user: (m.team, m.role) for m in list_members(project.location)}
    assert members[user] == ("A", "reviewer") and members[project.users["admin"]] == (None, "admin")
    with project.owner() as st:
        groups = st.groups
    assert _groups_of(project, user) == [groups["reviewer"]]
    (ours,) = project.add(team="A", status="submitted")
    with project.open("labeler_b") as st:
        st.update(ours, status="accepted")
    remove_member(project.location, user)
    assert _groups_of(project, user) == [] and user not in {m.user for m in list_members(project.location)}
    with pytest.raises(AccessDeniedError, match=f"{user} is not a member of project {project.schema}; ask"):
        project.open("labeler_b")


def _groups_of(project: Project, user: str) -> list[str]:
    with psycopg.connect(project.location.split("?")[0]) as conn:
        rows = conn.execute(
            "SELECT g.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
            "JOIN pg_roles u ON u.oid = a.member WHERE u.rolname = %s ORDER BY 1",
            (user,),
        ).fetchall()
    return [r[0] for r in rows]


def test_user_names_are_checked_before_any_sql(project):
    for bad in ('li"; DROP ROLE postgres; --', "1li", "pg_li", "public", "x" * 64):
        with pytest.raises(InputError, match="user"):
            add_member(project.location, bad, role="labeler", team="A", password="pw")
    with pytest.raises(InputError, match="needs a `team`"):
        add_member(project.location, "nobody_x", role="labeler", password="pw")


def run(*args: object, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_team_add_with_a_password_file_then_login_works_and_a_wrong_password_fails(pg_database, tmp_path):
    location = new_pg_location(pg_database, "cli")
    create_store(location, crs="EPSG:32649").close()
    user, password = f"li_{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
    (tmp_path / "pw").write_text(password + "\nignored\n")
    added = run("team", "add", location, "--user", user, "--team", "hunan", "--role", "labeler",
                "--password-file", tmp_path / "pw")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.strip().endswith(f"{user} is labeler of team hunan")
    with open_store(login(location, user, password)) as st:
        (new,) = st.add_geometries([box(0)], class_codes=[1])
        assert st.query(label_ids=[new]).team[0] == "hunan"
    with pytest.raises(UnreachableError, match="cannot connect") as wrong:
        open_store(login(location, user, password + "x"))
    listed = run("team", "list", location)
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == ["user", "team", "role"] and row.split() == [user, "hunan", "labeler"]
    removed = run("team", "remove", location, "--user", user)
    assert removed.exit_code == 0 and "removed (was labeler of team hunan)" in removed.output
    for text in (added.output, listed.output, removed.output, str(wrong.value)):
        assert password not in text


def test_team_add_asks_for_a_password_twice_and_never_shows_it(pg_database):
    location = new_pg_location(pg_database, "cli")
    create_store(location, crs="EPSG:32649").close()
    user, password = f"wang_{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
    added = run("team", "add", location, "--user", user, "--team", "t1", "--role", "reviewer",
                input=f"{password}\n{password}\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert password not in added.output and "password" in added.output
    with open_store(login(location, user, password)) as st:
        assert st.count() == 0
    with psycopg.connect(location.split("?")[0]) as conn:  # the server holds a SCRAM verifier only
        (stored,) = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,)).fetchone()
    assert stored.startswith("SCRAM-SHA-256$") and password not in stored


def test_team_commands_on_a_geopackage_say_teams_need_postgis(tmp_path):
    create_store(tmp_path / "s.gpkg", crs="EPSG:32649").close()
    res = run("team", "add", tmp_path / "s.gpkg", "--user", "li", "--team", "a", "--role", "labeler")
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "teams need a PostGIS store" in res.output


def test_team_add_without_createrole_is_access_denied_in_one_line(project):
    res = run("team", "add", project.url("labeler_a"), "--user", "someone_else", "--team", "A", "--role", "labeler",
              input="pw\npw\n")  # fmt: skip
    assert res.exit_code == 77
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("geolabel: error: ") and "CREATEROLE" in last and "Traceback" not in res.output
    assert project.passwords["labeler_a"] not in res.output


def test_a_non_member_gets_one_line_naming_the_command_that_adds_them(project):
    stranger = f"stranger_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(project.location.split("?")[0], autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {stranger} LOGIN PASSWORD 'pw-stranger'")
    url = login(project.location, stranger, "pw-stranger")
    res = run("labels", "stats", url)
    assert res.exit_code == 77
    assert res.output == (
        f"geolabel: error: {parse_location(url).display}: {stranger} is not a member of project {project.schema}; "
        "ask the project's admin to add you with `geolabel team add`\n"
    )
