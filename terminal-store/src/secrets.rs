//! The terminal's two secrets, each in a file of its own, never in the database: the Ed25519
//! key it signs requests with (`signing.key`) and the key that seals a kiosk's personal data
//! (`sealing.key`). Both live in the folder `<database>.secrets`, readable by its owner only
//! (0700, files 0600), so that a copy of the database alone neither signs as the terminal nor
//! opens what it sealed, and a kiosk image can put the folder on storage of its own
//! (`docs/threat-model.md`, "Placing a terminal's secrets").

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The file of the terminal's request-signing key.
pub const SIGNING_KEY: &str = "signing.key";
/// The file of the key a kiosk seals personal data with.
pub const SEALING_KEY: &str = "sealing.key";

/// The folder of the secrets of the database at `db`: `<database>.secrets`.
pub fn secrets_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".secrets");
    db.with_file_name(name)
}

/// The path of secret `name` of the database at `db`.
pub fn secret_path(db: &Path, name: &str) -> PathBuf {
    secrets_dir(db).join(name)
}

/// Makes the folder (0700) if needed, and narrows it to its owner if it was wider.
fn ensure_dir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating the folder {}", dir.display())),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting access to {}", dir.display()))?;
    }
    Ok(())
}

/// Reads a 32-byte secret; `None` when its file does not exist.
pub fn read(db: &Path, name: &str) -> Result<Option<[u8; 32]>> {
    let path = secret_path(db, name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .try_into()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("the secret file {} is not 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the secret file {}", path.display())),
    }
}

/// Writes a 32-byte secret to a new file (0600), durably. When the file exists with the same
/// bytes nothing is done; with other bytes, `replace` decides: replaced whole (written beside
/// it, then renamed over it) or refused.
pub fn write(db: &Path, name: &str, key: &[u8; 32], replace: bool) -> Result<()> {
    let dir = secrets_dir(db);
    ensure_dir(&dir)?;
    let path = dir.join(name);
    match read(db, name)? {
        Some(existing) if existing == *key => return Ok(()),
        Some(_) if !replace => bail!(
            "the secret file {} already holds another key; it is left as it is",
            path.display()
        ),
        _ => {}
    }
    let temporary = dir.join(format!("{name}.new"));
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("creating the secret file {}", temporary.display()))?;
    file.write_all(key)?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("putting the secret file {} in place", path.display()))?;
    if let Ok(folder) = std::fs::File::open(&dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}
