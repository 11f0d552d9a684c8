//! Members' personal data at rest: a name, a birth date and a phone number are kept in the
//! database only sealed (ChaCha20-Poly1305) under the server's data key, a file of its own
//! given to `serve --data-key-file` (by default `<database>.secrets/data.key`, 0600 in a 0700
//! folder). Duplicates are found through a keyed hash of the three (HMAC-SHA256), so that the
//! database alone tells neither who a member is nor, by guessing, whether someone is one.
//!
//! One 32-byte key file gives three keys, each for its own purpose (HMAC-SHA256 of the file's
//! key and a label): the sealing key, the identity key, and a check value the database keeps
//! so that a server given another key refuses to start rather than seal new members under it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::NaiveDate;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The length of a stored identity (a keyed hash).
pub const IDENTITY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// A member's personal data, as enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The name, as the kiosk's name rule left it (trimmed).
    pub name: String,
    /// The birth date.
    pub birth_date: NaiveDate,
    /// The phone number, digits only.
    pub phone: String,
}

/// The keys the server's data key file gives.
#[derive(Clone)]
pub struct DataKey {
    seal: ChaCha20Poly1305,
    identity: [u8; 32],
    check: [u8; 16],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("check", &hex(&self.check))
            .finish_non_exhaustive()
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as hmac::Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DataKey {
    /// The keys of the key file's 32 bytes.
    pub fn from_bytes(master: &[u8; 32]) -> DataKey {
        let seal = derive(master, b"palpal central personal data: seal v1");
        let identity = derive(master, b"palpal central personal data: identity v1");
        let check = derive(master, b"palpal central personal data: check v1");
        let mut short = [0u8; 16];
        short.copy_from_slice(&check[..16]);
        DataKey {
            seal: ChaCha20Poly1305::new(Key::from_slice(&seal)),
            identity,
            check: short,
        }
    }

    /// The value the database keeps to know its key again (it reveals nothing of the key).
    pub fn check(&self) -> [u8; 16] {
        self.check
    }

    /// The keyed hash by which a person is found again: the same name (trimmed), birth date
    /// and phone digits give the same identity under the same key.
    pub fn identity(&self, name: &str, birth_date: NaiveDate, phone: &str) -> [u8; IDENTITY_LEN] {
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.identity)
            .unwrap_or_else(|_| unreachable!());
        mac.update(&encode(name.trim(), birth_date, phone));
        mac.finalize().into_bytes().into()
    }

    /// `person` sealed for the row whose identity is `identity` (the sealed text opens only
    /// with that identity beside it, so rows cannot trade their sealed data). `nonce` must be
    /// fresh for each sealing: give it 12 random bytes.
    pub fn seal(&self, identity: &[u8; IDENTITY_LEN], person: &Person, nonce: [u8; 12]) -> Vec<u8> {
        let plain = encode(&person.name, person.birth_date, &person.phone);
        let sealed = self
            .seal
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: identity,
                },
            )
            .unwrap_or_else(|_| unreachable!("sealing a short message cannot fail"));
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The person sealed in `sealed` for the row of `identity`.
    pub fn open(&self, identity: &[u8], sealed: &[u8]) -> anyhow::Result<Person> {
        if sealed.len() < NONCE_LEN {
            bail!(
                "a sealed member record of {} bytes is too short",
                sealed.len()
            );
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .seal
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: identity,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("a sealed member record does not open under this data key")
            })?;
        decode(&plain).context("a sealed member record opened but is not a person")
    }

    /// Reads the key file at `file`; `None` when there is none.
    pub fn read(file: &Path) -> anyhow::Result<Option<DataKey>> {
        match std::fs::read(file) {
            Ok(bytes) => {
                let master: [u8; 32] = bytes.try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "개인정보 키 파일 {}이(가) 32바이트가 아닙니다 / the data key file {} is not 32 bytes",
                        file.display(),
                        file.display()
                    )
                })?;
                Ok(Some(DataKey::from_bytes(&master)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("reading the data key file {}", file.display()))
            }
        }
    }

    /// Makes a new key file at `file` with 32 random bytes (0600; its folder made 0700 when
    /// it is new), unless one is already there; returns the key the file holds.
    pub fn create(file: &Path) -> anyhow::Result<DataKey> {
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the folder {}", dir.display()))?;
            set_mode(dir, 0o700)?;
        }
        let mut master = [0u8; 32];
        getrandom::fill(&mut master).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        // Written whole beside it and linked into place, so that a second process starting at
        // the same moment either finds the first one's whole file or puts its own.
        let temporary = dir.join(format!(
            ".data-key-{}-{}",
            std::process::id(),
            hex(&master[..4])
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options
            .open(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        out.write_all(&master)?;
        out.sync_all()?;
        drop(out);
        let linked = std::fs::hard_link(&temporary, file);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                if let Ok(folder) = std::fs::File::open(dir) {
                    let _ = folder.sync_all();
                }
                Ok(DataKey::from_bytes(&master))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => DataKey::read(file)?
                .ok_or_else(|| anyhow::anyhow!("the data key file {} vanished", file.display())),
            Err(e) => {
                Err(e).with_context(|| format!("creating the data key file {}", file.display()))
            }
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting access to {}", path.display()))
}

/// Where the data key of the database at `db` is kept unless `serve --data-key-file` says
/// otherwise: `<database>.secrets/data.key`.
pub fn default_file(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".secrets");
    db.with_file_name(name).join("data.key")
}

/// Each field with its length before it (two bytes, little-endian), so that no text can run
/// into the next field.
fn encode(name: &str, birth_date: NaiveDate, phone: &str) -> Vec<u8> {
    let birth = birth_date.format("%Y-%m-%d").to_string();
    let mut out = Vec::with_capacity(name.len() + birth.len() + phone.len() + 6);
    for field in [name, birth.as_str(), phone] {
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
    }
    out
}

fn decode(mut bytes: &[u8]) -> anyhow::Result<Person> {
    let mut fields = Vec::with_capacity(3);
    for _ in 0..3 {
        let (len, rest) = bytes
            .split_first_chunk::<2>()
            .context("a field's length is missing")?;
        let len = usize::from(u16::from_le_bytes(*len));
        if rest.len() < len {
            bail!("a field runs past the record");
        }
        let (field, rest) = rest.split_at(len);
        fields.push(std::str::from_utf8(field)?.to_owned());
        bytes = rest;
    }
    let phone = fields.pop().unwrap_or_default();
    let birth = fields.pop().unwrap_or_default();
    let name = fields.pop().unwrap_or_default();
    Ok(Person {
        name,
        birth_date: NaiveDate::parse_from_str(&birth, "%Y-%m-%d")?,
        phone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            name: "김영희".to_owned(),
            birth_date: NaiveDate::from_ymd_opt(1950, 4, 1).unwrap_or_default(),
            phone: "01012345678".to_owned(),
        }
    }

    #[test]
    fn a_person_sealed_opens_only_with_the_same_key_and_row() -> anyhow::Result<()> {
        let key = DataKey::from_bytes(&[7; 32]);
        let p = person();
        let id = key.identity(&p.name, p.birth_date, &p.phone);
        let sealed = key.seal(&id, &p, [1; 12]);
        assert_eq!(key.open(&id, &sealed)?, p);
        // Nothing of the name or the phone is in the sealed bytes.
        for field in [p.name.as_bytes(), p.phone.as_bytes(), b"1950-04-01"] {
            assert!(!sealed.windows(field.len()).any(|w| w == field));
        }
        // Another key, another row's identity, or one changed byte: it does not open.
        let other = DataKey::from_bytes(&[8; 32]);
        assert!(other.open(&id, &sealed).is_err());
        let mut elsewhere = id;
        elsewhere[0] ^= 1;
        assert!(key.open(&elsewhere, &sealed).is_err());
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(key.open(&id, &changed).is_err());
        assert!(key.open(&id, &sealed[..5]).is_err());
        Ok(())
    }

    #[test]
    fn the_identity_depends_on_the_key_and_every_field() {
        let key = DataKey::from_bytes(&[7; 32]);
        let p = person();
        let id = key.identity(&p.name, p.birth_date, &p.phone);
        assert_eq!(id, key.identity(" 김영희 ", p.birth_date, &p.phone));
        assert_ne!(id, key.identity("김영수", p.birth_date, &p.phone));
        let next_day = p.birth_date.succ_opt().unwrap_or_default();
        assert_ne!(id, key.identity(&p.name, next_day, &p.phone));
        assert_ne!(id, key.identity(&p.name, p.birth_date, "01012345679"));
        // Fields cannot run into each other.
        assert_ne!(
            key.identity("김영희0", p.birth_date, "1012345678"),
            key.identity("김영희", p.birth_date, "01012345678")
        );
        assert_ne!(
            id,
            DataKey::from_bytes(&[8; 32]).identity(&p.name, p.birth_date, &p.phone)
        );
        assert_ne!(
            DataKey::from_bytes(&[7; 32]).check(),
            DataKey::from_bytes(&[8; 32]).check()
        );
    }

    #[test]
    fn a_new_key_file_is_the_owners_alone_and_made_once() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let file = default_file(&dir.path().join("central.db"));
        assert!(DataKey::read(&file)?.is_none());
        let made = DataKey::create(&file)?;
        let again = DataKey::create(&file)?;
        assert_eq!(made.check(), again.check());
        let read = DataKey::read(&file)?.context("the file is there")?;
        assert_eq!(read.check(), made.check());
        let mode = |p: &Path| -> anyhow::Result<u32> {
            Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
        };
        assert_eq!(mode(&file)?, 0o600);
        assert_eq!(mode(file.parent().context("a folder")?)?, 0o700);
        std::fs::write(&file, b"short")?;
        let refused = DataKey::read(&file)
            .err()
            .context("a short key file is refused")?;
        assert!(refused.to_string().contains("32"), "{refused}");
        Ok(())
    }
}
