"""Label stores in QGIS's terms: a GeoPackage file, or a project schema in PostGIS.

A PostGIS store's labels layer is read and written by QGIS's own "postgres" provider, so
QGIS authenticates the usual way (``~/.pgpass``, ``pg_service.conf``, its saved
connections and auth configurations); the engine opens the same store with
``open_store(location)``. A password never enters a layer source, a project or a message:
one typed into a location stays in this session's credential cache (``QgsCredentials``),
where the provider looks first.
"""

from __future__ import annotations

from qgis.core import QgsApplication, QgsCredentials, QgsDataSourceUri, QgsProviderRegistry, QgsVectorLayer

PG_PROVIDER = "postgres"
LABELS_TABLE = "labels"
#: Passwords typed into a location, by connection (QGIS's realm): a property of the running
#: QgsApplication, so in memory for this session only, and the same for the dock and the
#: Processing algorithms even after the plugin is reloaded.
PASSWORDS_PROPERTY = "geolabel/session_passwords"
#: Finds the project schemas of a database: each has a geolabel_meta table.
STORE_SCHEMAS_SQL = "SELECT table_schema FROM information_schema.tables WHERE table_name = 'geolabel_meta' ORDER BY 1"


def is_postgres(location):
    from geolabel.labels.pg_location import is_postgres_location

    return bool(location) and is_postgres_location(str(location))


def shown(location):
    """How a store is named on screen and in the project: a PostgreSQL location without its
    password (``postgresql://li@db:5432/labels?schema=p1``), a file as its path."""
    if not is_postgres(location):
        return str(location)
    from geolabel.labels.pg_location import parse_location

    return parse_location(str(location)).display


def labels_layer(location, name="labels"):
    """The store's labels layer: the GeoPackage's ``labels`` (ogr) or the schema's table
    (postgres provider, key ``fid``, geometry ``geom``)."""
    if not is_postgres(location):
        return QgsVectorLayer(f"{location}|layername={LABELS_TABLE}", name, "ogr")
    uri, password = _labels_uri(str(location))
    if password:
        _remember_password(uri.connectionInfo(False), password)
        QgsCredentials.instance().put(uri.connectionInfo(False), uri.username(), password)
    return QgsVectorLayer(uri.uri(False), name, PG_PROVIDER)


def _labels_uri(location):
    """(QgsDataSourceUri of the labels table without a password, the password or None)."""
    from geolabel.labels.pg_location import parse_location

    loc = parse_location(location)
    from geolabel.labels.pg_location import conninfo_keywords

    params = conninfo_keywords(loc.conninfo)
    ssl = QgsDataSourceUri.decodeSslMode(params.get("sslmode", "prefer"))
    uri = QgsDataSourceUri()
    database, user = params.get("dbname", ""), params.get("user", "")
    if params.get("service"):
        uri.setConnection(params["service"], database, user, "", ssl)
    else:
        uri.setConnection(params.get("host", ""), params.get("port", ""), database, user, "", ssl)
    uri.setDataSource(loc.schema, LABELS_TABLE, "geom", "", "fid")
    return uri, params.get("password")


def location_of(uri, schema):
    """The location (a ``postgresql://`` URL) of project ``schema`` in the database a
    QgsDataSourceUri connects to. An auth configuration is expanded for the engine, and
    a password QGIS knows for it (saved connection, typed this session) comes along: the
    location is for the engine's connection, screens get :func:`shown`."""
    from geolabel.labels.pg_location import conninfo_keywords, location_url

    params = conninfo_keywords(uri.connectionInfo(True))
    return location_url({**_cached_password(uri), **params}, schema)


def engine_location(location):
    """``location`` as the engine opens it: a PostgreSQL location without a password gets
    the one typed for its connection this session (a Processing dialog, its history and
    its log only ever show locations without one)."""
    if not is_postgres(location):
        return location
    from geolabel.labels.pg_location import conninfo_keywords, location_url, parse_location

    uri, password = _labels_uri(str(location))
    known = _cached_password(uri)
    if password or not known:
        return location
    params = conninfo_keywords(parse_location(str(location)).conninfo)
    return location_url({**params, **known}, uri.schema())


def _remember_password(realm, password):
    app = QgsApplication.instance()
    app.setProperty(PASSWORDS_PROPERTY, {**(app.property(PASSWORDS_PROPERTY) or {}), realm: password})


def _cached_password(uri):
    """{"password": ...} typed into a location this session for this connection, else {}."""
    password = (QgsApplication.instance().property(PASSWORDS_PROPERTY) or {}).get(uri.connectionInfo(False))
    return {"password": password} if password else {}


def layer_location(layer):
    """The store location a labels layer was read from: its file for a GeoPackage, its
    connection and schema for PostGIS (None for any other layer)."""
    if layer is None:
        return None
    if layer.providerType() == PG_PROVIDER:
        uri = QgsDataSourceUri(layer.source())
        return location_of(uri, uri.schema()) if uri.table() == LABELS_TABLE else None
    parts = layer.source().split("|")
    return parts[0] if f"layername={LABELS_TABLE}" in parts[1:] else None


# -- QGIS's saved PostgreSQL connections ------------------------------------------------


def saved_connections():
    """Names of QGIS's saved PostgreSQL connections (Browser > PostgreSQL), sorted."""
    metadata = QgsProviderRegistry.instance().providerMetadata(PG_PROVIDER)
    return sorted(metadata.connections().keys()) if metadata is not None else []


def _connection(name):
    return QgsProviderRegistry.instance().providerMetadata(PG_PROVIDER).findConnection(name)


def without_password(text):
    """A connection message with any ``password=...`` in it blanked out."""
    import re

    return re.sub(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "password=…", text)


def store_schemas(name):
    """The label-store projects (schemas) in saved connection ``name``'s database.

    Raises QgsException when the database cannot be reached."""
    return [str(row[0]) for row in _connection(name).executeSql(STORE_SCHEMAS_SQL)]


def connection_location(name, schema):
    """The location of project ``schema`` in saved connection ``name``'s database."""
    return location_of(QgsDataSourceUri(_connection(name).uri()), schema)
