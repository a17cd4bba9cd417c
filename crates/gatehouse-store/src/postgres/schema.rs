//! The shared store's schema version: which migrations the database has,
//! which this gatehouse knows, and setting up a fresh database.
//!
//! Nodes of different versions share the store during an upgrade, so a
//! node never changes an existing schema by itself: a fresh (empty)
//! database is set up at connect, anything older waits for `gatehouse
//! store migrate`, and anything newer is refused.

use gatehouse_core::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgConnection;

/// The PostgreSQL migrations, embedded (their own `_sqlx_migrations` table,
/// in the store's database).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations-postgres");

/// The advisory lock key held while the schema is checked and set up
/// ("gatehous" in ASCII), so nodes starting together on an empty database
/// do not both set it up. Advisory locks are per database.
const SCHEMA_LOCK: i64 = 0x6761_7465_686f_7573;

/// Where a store's schema stands against this gatehouse's migrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaState {
    /// No gatehouse schema yet: set up at connect.
    Empty,
    /// The migrations this gatehouse knows, all applied.
    Current,
    /// Older: `gatehouse store migrate` brings it to `known`.
    Older {
        /// The newest migration applied.
        applied: i64,
        /// The newest migration this gatehouse knows.
        known: i64,
    },
    /// Migrated by a newer gatehouse: this node needs upgrading.
    Newer {
        /// The newest migration applied.
        applied: i64,
        /// The newest migration this gatehouse knows.
        known: i64,
    },
}

impl SchemaState {
    /// The state for the newest applied migration (`None`: no migrations
    /// table) against the newest known one.
    pub(crate) fn of(applied: Option<i64>, known: i64) -> Self {
        match applied {
            None => Self::Empty,
            Some(applied) if applied == known => Self::Current,
            Some(applied) if applied < known => Self::Older { applied, known },
            Some(applied) => Self::Newer { applied, known },
        }
    }

    /// Why a node cannot use a store in this state, if it cannot.
    pub(crate) fn refusal(self, shown_url: &str) -> Option<String> {
        match self {
            Self::Empty | Self::Current => None,
            Self::Older { applied, known } => Some(format!(
                "the store at {shown_url} has schema version {applied}; this gatehouse needs \
                 {known}: run `gatehouse store migrate`"
            )),
            Self::Newer { applied, known } => Some(format!(
                "the store at {shown_url} has schema version {applied}, newer than this \
                 gatehouse's {known}: it was migrated by a newer gatehouse; upgrade this node"
            )),
        }
    }
}

/// The newest migration this gatehouse knows.
pub(crate) fn known_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The state of the database `conn` is connected to.
pub(crate) async fn state(conn: &mut PgConnection) -> Result<SchemaState, sqlx::Error> {
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let applied = if has_table {
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut *conn)
                .await?;
        Some(newest.unwrap_or(0))
    } else {
        None
    };
    Ok(SchemaState::of(applied, known_version()))
}

/// Takes (`true`) or releases the schema lock. The connection is the
/// caller's own (not a pool's): should anything fail between, closing it
/// releases the lock.
async fn schema_lock(conn: &mut PgConnection, take: bool) -> Result<(), StoreError> {
    if take {
        // Migrations may take long (an index on a large table), and a node
        // starting meanwhile waits for them: no timeouts on this connection.
        for set in ["SET statement_timeout = 0", "SET lock_timeout = 0"] {
            sqlx::query(set)
                .execute(&mut *conn)
                .await
                .map_err(|e| StoreError::Unavailable(format!("schema lock: {e}")))?;
        }
    }
    let sql = if take {
        "SELECT pg_advisory_lock($1)"
    } else {
        "SELECT pg_advisory_unlock($1)"
    };
    sqlx::query(sql)
        .bind(SCHEMA_LOCK)
        .execute(conn)
        .await
        .map_err(|e| StoreError::Unavailable(format!("schema lock: {e}")))?;
    Ok(())
}

/// Checks the schema at connect: sets up an empty database, refuses an
/// older or newer one.
pub(crate) async fn prepare(
    conn: &mut PgConnection,
    options: &PgConnectOptions,
    shown_url: &str,
) -> Result<(), StoreError> {
    schema_lock(conn, true).await?;
    let done = prepare_locked(conn, options, shown_url).await;
    schema_lock(conn, false).await?;
    done
}

async fn prepare_locked(
    conn: &mut PgConnection,
    options: &PgConnectOptions,
    shown_url: &str,
) -> Result<(), StoreError> {
    let found = state(conn).await.map_err(|e| checking(shown_url, e))?;
    if let Some(why) = found.refusal(shown_url) {
        return Err(StoreError::Unavailable(why));
    }
    if found == SchemaState::Empty {
        tracing::info!(store = %shown_url, "setting up the empty store's schema");
        run(options, shown_url).await?;
    }
    Ok(())
}

/// Applies every migration not yet applied: returns the newest applied
/// before and after. Refuses a store migrated by a newer gatehouse.
pub(crate) async fn migrate(
    conn: &mut PgConnection,
    options: &PgConnectOptions,
    shown_url: &str,
) -> Result<(i64, i64), StoreError> {
    schema_lock(conn, true).await?;
    let done = migrate_locked(conn, options, shown_url).await;
    schema_lock(conn, false).await?;
    done
}

async fn migrate_locked(
    conn: &mut PgConnection,
    options: &PgConnectOptions,
    shown_url: &str,
) -> Result<(i64, i64), StoreError> {
    let before = state(conn).await.map_err(|e| checking(shown_url, e))?;
    let applied_before = match before {
        SchemaState::Empty => 0,
        SchemaState::Current => known_version(),
        SchemaState::Older { applied, .. } => applied,
        newer @ SchemaState::Newer { .. } => {
            return Err(StoreError::Unavailable(
                newer.refusal(shown_url).unwrap_or_default(),
            ))
        }
    };
    run(options, shown_url).await?;
    Ok((applied_before, known_version()))
}

/// Runs the migrator, on a connection of its own (it takes its own lock
/// too): given a `&mut PgConnection`, its future is not provably `Send`
/// (sqlx's `Acquire` bound), and a store must connect from any task.
async fn run(options: &PgConnectOptions, shown_url: &str) -> Result<(), StoreError> {
    let failed =
        |e: String| StoreError::Unavailable(format!("migrating the store at {shown_url}: {e}"));
    let unbounded = options
        .clone()
        .options([("statement_timeout", "0"), ("lock_timeout", "0")]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(unbounded)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let ran = MIGRATOR.run(&pool).await;
    pool.close().await;
    ran.map_err(|e| failed(e.to_string()))
}

fn checking(shown_url: &str, e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "reading the schema version of the store at {shown_url}: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decide_the_state() {
        let known = known_version();
        assert!(known >= 1);
        assert_eq!(SchemaState::of(None, known), SchemaState::Empty);
        assert_eq!(SchemaState::of(Some(known), known), SchemaState::Current);
        assert_eq!(
            SchemaState::of(Some(0), known),
            SchemaState::Older { applied: 0, known }
        );
        assert_eq!(
            SchemaState::of(Some(known + 1), known),
            SchemaState::Newer {
                applied: known + 1,
                known
            }
        );
        let older = SchemaState::Older {
            applied: 3,
            known: 5,
        }
        .refusal("postgres://g@db/g")
        .unwrap();
        assert!(
            older.contains("version 3") && older.contains("needs 5"),
            "{older}"
        );
        assert!(older.contains("gatehouse store migrate"), "{older}");
        let newer = SchemaState::Newer {
            applied: 7,
            known: 5,
        }
        .refusal("postgres://g@db/g")
        .unwrap();
        assert!(newer.contains("newer gatehouse") && newer.contains("upgrade this node"));
        assert!(SchemaState::Current.refusal("x").is_none());
    }
}
