//! Invariants over the two migration trees and the schemas they produce.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::support::*;

fn names(backend: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = names("sqlite");
    let postgres = names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "every migration exists under both backends with the same name"
    );
    for name in &sqlite {
        let (date, rest) = name.split_at(17);
        assert!(
            date.chars().filter(|c| c.is_ascii_digit()).count() == 14,
            "{name}: YYYY-MM-DD-HHMMSS_verb_noun"
        );
        assert!(rest.starts_with('_'), "{name}");
        for backend in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../migrations")
                    .join(backend)
                    .join(name)
                    .join(file);
                assert!(p.exists(), "{} is missing", p.display());
            }
        }
    }
}

#[derive(QueryableByName, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

// why table_xinfo: table_info leaves out generated columns (`clients.email_lcp`).
const SQLITE_COLUMNS: &str = "SELECT m.name AS table_name, p.name AS column_name \
    FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p \
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'";
// why pg_catalog and not information_schema: the latter checks privileges row by row over
// every schema in the database, and with the suite's throw-away schemas it outgrew the
// request time limit under CI load.
const PG_COLUMNS: &str = "SELECT cl.relname::text AS table_name, a.attname::text AS column_name \
    FROM pg_catalog.pg_attribute a \
    JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid \
    JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
    WHERE n.nspname = current_schema() AND cl.relkind IN ('r', 'p') \
    AND a.attnum > 0 AND NOT a.attisdropped \
    AND cl.relname <> '__diesel_schema_migrations'";

/// A schema reader is not a request: it runs without the request time limit.
fn unbounded(c: &mut diesel::PgConnection) {
    use diesel::connection::SimpleConnection;
    c.batch_execute("SET statement_timeout = 0").unwrap();
}

fn sqlite_columns() -> BTreeSet<(String, String)> {
    let dir =
        std::env::temp_dir().join(format!("rapport-schema-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = rapport::db::DbTarget::sqlite_file(&dir.join("s.db"));
    let pool = rapport::db::connect(&target, 1).unwrap();
    let mut conn = pool.get().unwrap();
    rapport::db::migrate(&mut conn).unwrap();
    let rapport::db::DbConn::Sqlite(c) = &mut *conn else {
        unreachable!()
    };
    let cols: Vec<Column> = diesel::sql_query(SQLITE_COLUMNS).load(c).unwrap();
    drop(conn);
    drop(pool);
    let _ = std::fs::remove_dir_all(dir);
    cols.into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect()
}

/// The PostgreSQL server to compare with: the one the suite runs on, else the one CI names
/// for both runs (so the SQLite run compares too).
fn pg_url() -> Option<String> {
    ["TEST_DATABASE_URL", "PG_TEST_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
}

#[test]
fn both_backends_expose_the_same_tables_and_columns() {
    let sqlite = sqlite_columns();
    assert!(sqlite.contains(&("memberships".into(), "organization_id".into())));
    let Some(url) = pg_url() else {
        eprintln!("no PostgreSQL server named (TEST_DATABASE_URL or PG_TEST_URL): not compared");
        return;
    };
    let (db, target) = TestDb::postgres(url);
    assert!(db.is_postgres());
    let pool = rapport::db::connect(&target, 1).unwrap();
    let mut conn = pool.get().unwrap();
    rapport::db::migrate(&mut conn).unwrap();
    let rapport::db::DbConn::Postgresql(c) = &mut *conn else {
        unreachable!()
    };
    unbounded(c);
    let cols: Vec<Column> = diesel::sql_query(PG_COLUMNS).load(c).unwrap();
    let pg: BTreeSet<(String, String)> = cols
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect();
    assert_eq!(
        sqlite, pg,
        "the migrated schemas differ between SQLite and PostgreSQL"
    );
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    from_col: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

#[test]
fn every_organization_column_references_organizations_and_cascades() {
    let dir = std::env::temp_dir().join(format!("rapport-fk-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pool =
        rapport::db::connect(&rapport::db::DbTarget::sqlite_file(&dir.join("f.db")), 1).unwrap();
    let mut conn = pool.get().unwrap();
    rapport::db::migrate(&mut conn).unwrap();
    let rapport::db::DbConn::Sqlite(c) = &mut *conn else {
        unreachable!()
    };
    let cols: Vec<Column> = diesel::sql_query(SQLITE_COLUMNS).load(c).unwrap();
    let fks: Vec<ForeignKey> = diesel::sql_query(
        "SELECT m.name AS tbl, f.\"from\" AS from_col, f.on_delete AS on_delete \
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND f.\"table\" = 'organizations'",
    )
    .load(c)
    .unwrap();
    for col in cols.iter().filter(|c| c.column_name == "organization_id") {
        let fk = fks
            .iter()
            .find(|f| f.tbl == col.table_name && f.from_col == "organization_id");
        assert!(
            fk.is_some_and(|f| f.on_delete == "CASCADE"),
            "{}.organization_id must reference organizations ON DELETE CASCADE",
            col.table_name
        );
    }
    drop(conn);
    drop(pool);
    let _ = std::fs::remove_dir_all(dir);
}

/// The foreign keys of the current schema that reference `target`, with their delete rule.
fn pg_foreign_keys(c: &mut diesel::PgConnection, target: &str) -> Vec<ForeignKey> {
    diesel::sql_query(
        "SELECT cl.relname::text AS tbl, a.attname::text AS from_col, \
                CASE k.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' \
                  WHEN 'd' THEN 'SET DEFAULT' WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END \
                  AS on_delete \
         FROM pg_catalog.pg_constraint k \
         JOIN pg_catalog.pg_class cl ON cl.oid = k.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
         JOIN pg_catalog.pg_class target ON target.oid = k.confrelid \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) \
         WHERE k.contype = 'f' AND n.nspname = current_schema() AND target.relname = $1",
    )
    .bind::<Text, _>(target)
    .load(c)
    .unwrap()
}

#[test]
fn on_postgresql_too_every_organization_column_cascades() {
    let Some(url) = pg_url() else {
        eprintln!("no PostgreSQL server named (TEST_DATABASE_URL or PG_TEST_URL): not checked");
        return;
    };
    let (_db, target) = TestDb::postgres(url);
    let pool = rapport::db::connect(&target, 1).unwrap();
    let mut conn = pool.get().unwrap();
    rapport::db::migrate(&mut conn).unwrap();
    let rapport::db::DbConn::Postgresql(c) = &mut *conn else {
        unreachable!()
    };
    unbounded(c);
    let cols: Vec<Column> = diesel::sql_query(PG_COLUMNS).load(c).unwrap();
    let fks = pg_foreign_keys(c, "organizations");
    let org_columns: Vec<&Column> = cols
        .iter()
        .filter(|c| c.column_name == "organization_id")
        .collect();
    assert!(org_columns.len() > 20, "the schema was read");
    // The list's order and its prefix ranges rely on the clients' text keys comparing bytes
    // (as on SQLite) whatever the database's own collation is.
    let byte_ordered: Vec<Column> = diesel::sql_query(
        "SELECT cl.relname::text AS table_name, a.attname::text AS column_name \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
         JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
         WHERE n.nspname = current_schema() AND cl.relname = 'clients' AND co.collname = 'C'",
    )
    .load(c)
    .unwrap();
    let byte_ordered: BTreeSet<&str> = byte_ordered
        .iter()
        .map(|c| c.column_name.as_str())
        .collect();
    for col in [
        "sort_name",
        "email",
        "kind",
        "status",
        "company_name",
        "name_key",
        "phone_key",
    ] {
        assert!(
            byte_ordered.contains(col),
            "clients.{col} must be COLLATE \"C\": {byte_ordered:?}"
        );
    }
    // Written once per imported row, where each key check is a query and a row lock
    // (migration email_prefix_index): the change log goes with its batch, whose key
    // cascades; an outbox row is transient, and one naming a gone record deletes its document.
    let by_parent = fks
        .iter()
        .any(|f| f.tbl == "import_batches" && f.on_delete == "CASCADE");
    assert!(by_parent, "import_batches.organization_id cascades");
    let batch_key = pg_foreign_keys(c, "import_batches");
    assert!(
        batch_key.iter().any(|f| f.tbl == "import_changes"
            && f.from_col == "batch_id"
            && f.on_delete == "CASCADE"),
        "import_changes.batch_id must reference import_batches ON DELETE CASCADE"
    );
    for col in org_columns {
        if ["import_changes", "search_outbox"].contains(&col.table_name.as_str()) {
            continue;
        }
        let fk = fks
            .iter()
            .find(|f| f.tbl == col.table_name && f.from_col == "organization_id");
        assert!(
            fk.is_some_and(|f| f.on_delete == "CASCADE"),
            "{}.organization_id must reference organizations ON DELETE CASCADE",
            col.table_name
        );
    }
}
