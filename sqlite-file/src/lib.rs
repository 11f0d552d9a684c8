//! What both SQLite stores (the terminal's and the central server's) ask of their file: is it
//! intact before anything is written to it, and was a write refused because the disk is full.

use rusqlite::Connection;

/// The errno of a full disk (ENOSPC) on Linux.
const ENOSPC: i32 = 28;

/// Whether `error`, from a store's call, is the disk (or the database) being full: SQLite's
/// SQLITE_FULL (which it also reports for ENOSPC on the database or its WAL), or an ENOSPC
/// anywhere in the chain. Such a write was not made, what was committed before stands, and the
/// same write works again once there is room.
pub fn is_disk_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            == Some(rusqlite::ErrorCode::DiskFull)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.raw_os_error() == Some(ENOSPC))
    })
}

/// `PRAGMA quick_check` on `conn`: `Ok` when the file is an intact SQLite database, otherwise
/// what SQLite found (its first three lines), for a message that says what to do.
pub fn quick_check(conn: &Connection) -> Result<(), String> {
    let verdict: rusqlite::Result<Vec<String>> =
        conn.prepare("PRAGMA quick_check")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect()
            });
    match verdict {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(()),
        Ok(lines) => Err(lines.into_iter().take(3).collect::<Vec<_>>().join("; ")),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_full_and_enospc_are_a_full_disk_and_nothing_else_is() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".to_owned()),
        );
        assert!(is_disk_full(
            &anyhow::Error::new(full).context("committing a write group")
        ));
        let enospc = anyhow::Error::new(std::io::Error::from_raw_os_error(ENOSPC));
        assert!(is_disk_full(&enospc.context("writing")));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(!is_disk_full(&anyhow::Error::new(busy)));
        assert!(!is_disk_full(&anyhow::anyhow!("database or disk is full")));
    }

    #[test]
    fn an_intact_file_passes_and_a_damaged_one_says_what_was_found() {
        let dir = std::env::temp_dir().join(format!("sqlite-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.db");
        let conn = Connection::open(&good).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(quick_check(&conn), Ok(()));
        drop(conn);
        let bad = dir.join("bad.db");
        std::fs::write(&bad, b"this is not a database, it is a shopping list").unwrap();
        let found = quick_check(&Connection::open(&bad).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        let found = found.unwrap_err();
        assert!(found.contains("not a database"), "{found}");
    }
}
