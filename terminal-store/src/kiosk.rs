//! The sign-up kiosk's records: the admission schedule and quota lease the server pulled
//! (migration 4's `pull_state.admission` and `quota_leases`, read here, written by `pull`;
//! a lease's `used` is the server's count plus the places taken here since),
//! enrollments with their consents and place in the lease, numbered tickets for later days,
//! and personal data sealed at rest (migration 6).
//!
//! Personal data (name, birth date, phone, guardian phone) is stored encrypted with
//! ChaCha20-Poly1305 under a key kept in a file beside the database (`<database>.key`,
//! created readable by its owner only), so a copy of the database alone does not reveal it.
//! Once the server acknowledges an enrollment (its outbox entry settled `done`),
//! [`Store::erase_acknowledged`] drops the sealed data and the outbox payload, keeping only
//! what the day's list shows: the masked name, the age and the local number. A keyed hash of
//! (name, birth date, phone) stays, so the same person is still found as a duplicate.
//!
//! Decides nothing: admission and eligibility come from `kiosk-core`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, FixedOffset, NaiveDate};
use kiosk_core::admission::{AdmissionSchedule, QuotaLease, Ticket};
use kiosk_core::consent::ConsentRecord;
use kiosk_core::Enrollment;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sync_protocol::wire::{EnrollmentPayload, OpPayload};

use crate::{residency_name, ConfirmedEnrollment, Store};

/// What the kiosk confirmed for one person, to record in one transaction.
#[derive(Debug, Clone)]
pub struct KioskEnrollment<'a> {
    pub op_id: &'a str,
    pub site: &'a str,
    pub enrollment: &'a Enrollment,
    pub consents: &'a ConsentRecord,
    /// An optional guardian's phone, from the contact step.
    pub guardian_phone: Option<&'a str>,
    /// The lease and the place taken in it, when a schedule admitted the person.
    pub place: Option<(&'a str, u32)>,
    pub at: DateTime<FixedOffset>,
}

/// The personal data sealed in `enrollments.sealed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    pub name: String,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub guardian_phone: Option<String>,
}

/// An earlier sign-up or cached member found for the same person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownPerson {
    pub member_no: Option<String>,
    pub local_no: Option<i64>,
    pub day: Option<NaiveDate>,
}

/// One enrollment's card data as the kiosk keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentCard {
    pub local_no: i64,
    pub op_id: String,
    pub masked_name: String,
    pub day: NaiveDate,
    /// The member number the server assigned, once it acknowledged the sign-up.
    pub member_no: Option<String>,
    pub place: Option<u32>,
    /// Whether the personal data has been erased (server acknowledged).
    pub erased: bool,
    /// The member card's token (`PP1:...`) once the server signed it, until it is printed.
    pub card_token: Option<String>,
    /// Whether the card was printed (and its token, salt and PIN check erased here).
    pub card_printed: bool,
}

/// The PIN check of a member card asked of the server, kept from before the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardCheck {
    pub serial: u16,
    pub cost: u8,
    pub salt: [u8; 8],
    pub tag: [u8; 2],
}

/// local_no, masked name, day, member number, place, erased at, card token, printed at.
type CardRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<u32>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Store {
    /// The admission schedule the server last published, if this kiosk ever pulled one.
    pub fn admission_schedule(&self) -> Result<Option<AdmissionSchedule>> {
        let text: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT admission FROM pull_state WHERE only_row = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        text.flatten()
            .map(|t| serde_json::from_str(&t).context("reading the pulled admission schedule"))
            .transpose()
    }

    /// The site's quota lease for `day`, if the server granted one.
    pub fn quota_lease(&self, site: &str, day: NaiveDate) -> Result<Option<QuotaLease>> {
        let row: Option<(String, String, String, u32, u32)> = self
            .conn
            .query_row(
                "SELECT lease_id, site, day, places, used FROM quota_leases
                 WHERE site = ?1 AND day = ?2 ORDER BY lease_id LIMIT 1",
                params![site, day.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        row.map(|(lease_id, site, day, places, used)| {
            // The server counts what it has received; the places taken here since are
            // added: sign-ups not yet sent, or acknowledged after the last pull.
            let here: u32 = self.conn.query_row(
                "SELECT count(*) FROM enrollments e JOIN outbox o ON o.op_id = e.op_id
                 WHERE e.lease_id = ?1
                   AND (o.state IN ('queued', 'in_flight')
                        OR (o.state = 'done' AND o.settled_at >
                            coalesce((SELECT last_pull FROM pull_state WHERE only_row = 1), '')))",
                [&lease_id],
                |r| r.get(0),
            )?;
            Ok(QuotaLease {
                lease_id,
                site,
                day: day.parse()?,
                places,
                used: used + here,
            })
        })
        .transpose()
    }

    /// A keyed hash of the person (name without spaces, birth date, phone digits).
    pub fn person_key(&self, name: &str, birth_date: NaiveDate, phone: &str) -> Result<String> {
        let key = self.personal_key()?;
        let mut h = Sha256::new();
        h.update(key);
        h.update(kiosk_core::person_fingerprint(name, birth_date, phone).as_bytes());
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The same person signed up here before (any day, unless the server rejected it), or
    /// cached as a member from the server.
    pub fn find_person(
        &self,
        name: &str,
        birth_date: NaiveDate,
        phone: &str,
    ) -> Result<Option<KnownPerson>> {
        let key = self.person_key(name, birth_date, phone)?;
        let fingerprint = kiosk_core::person_fingerprint(name, birth_date, phone);
        let here: Option<(i64, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT e.local_no, e.day, o.member_number FROM enrollments e
                 LEFT JOIN outbox o ON o.op_id = e.op_id
                 WHERE (e.person_key = ?1
                        OR (e.person_key IS NULL
                            AND replace(e.name, ' ', '') || '|' || e.birth_date || '|' || e.phone = ?2))
                   AND coalesce(o.state, 'queued') <> 'rejected'
                 ORDER BY e.local_no LIMIT 1",
                params![key, fingerprint],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        if let Some((local_no, day, member_no)) = here {
            return Ok(Some(KnownPerson {
                member_no,
                local_no: Some(local_no),
                day: Some(day.parse()?),
            }));
        }
        let member: Option<String> = self
            .conn
            .query_row(
                "SELECT member_no FROM members
                 WHERE replace(name, ' ', '') || '|' || birth_date || '|' || phone = ?1
                 LIMIT 1",
                [&fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        Ok(member.map(|m| KnownPerson {
            member_no: Some(m),
            local_no: None,
            day: None,
        }))
    }

    /// Records a kiosk enrollment: the masked name and age in the clear, personal data sealed,
    /// consents, the place taken in the lease (counted by [`Store::quota_lease`] from then
    /// on), and the outbox entry, in one transaction. The same `op_id` again returns the first record.
    pub fn record_kiosk_enrollment(
        &mut self,
        rec: &KioskEnrollment<'_>,
    ) -> Result<ConfirmedEnrollment> {
        let key = self.personal_key()?;
        let e = rec.enrollment;
        let person_key = self.person_key(&e.name, e.birth_date, &e.phone)?;
        let personal = PersonalData {
            name: e.name.clone(),
            birth_date: e.birth_date,
            phone: e.phone.clone(),
            guardian_phone: rec.guardian_phone.map(str::to_owned),
        };
        let sealed = seal(&key, rec.op_id, &serde_json::to_vec(&personal)?)?;
        let day = rec.at.date_naive();
        let tx = self.conn.transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT local_no FROM enrollments WHERE op_id = ?1",
                [rec.op_id],
                |r| r.get(0),
            )
            .optional()?;
        let local_no = match existing {
            Some(n) => n,
            None => {
                tx.execute(
                    "INSERT INTO enrollments(op_id, site, day, created_at, name, birth_date, phone,
                         residency, sealed, person_key, age, consents, lease_id, place)
                     VALUES (?1, ?2, ?3, ?4, ?5, '', '', ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        rec.op_id,
                        rec.site,
                        day.to_string(),
                        rec.at.to_rfc3339(),
                        kiosk_core::card::mask_name(&e.name),
                        residency_name(e.residency),
                        sealed,
                        person_key,
                        e.age,
                        serde_json::to_string(rec.consents)?,
                        rec.place.map(|p| p.0),
                        rec.place.map(|p| p.1),
                    ],
                )?;
                let local_no = tx.last_insert_rowid();
                // The personal data stays sealed in the outbox too: the payload says where
                // it is, and [`Store::outbox_pending`] opens it only to send it.
                let payload = serde_json::to_string(&StoredEnrollment {
                    sealed_personal_data: true,
                    residency: Some(residency_name(e.residency).to_owned()),
                    age: Some(e.age),
                    day: Some(day.to_string()),
                    name: None,
                    birth_date: None,
                    phone: None,
                })?;
                tx.execute(
                    "INSERT INTO outbox(op_id, kind, payload, created_at) VALUES (?1, 'enrollment', ?2, ?3)",
                    params![rec.op_id, payload, rec.at.to_rfc3339()],
                )?;
                local_no
            }
        };
        tx.commit()?;
        self.enrollment(local_no)
    }

    /// The personal data of an enrollment, unsealed, while it is still kept.
    pub fn personal_data(&self, op_id: &str) -> Result<Option<PersonalData>> {
        let sealed: Option<Option<Vec<u8>>> = self
            .conn
            .prepare_cached("SELECT sealed FROM enrollments WHERE op_id = ?1")?
            .query_row([op_id], |r| r.get(0))
            .optional()?;
        match sealed.flatten() {
            None => Ok(None),
            Some(bytes) => {
                let plain = open(&self.personal_key()?, op_id, &bytes)?;
                Ok(Some(serde_json::from_slice(&plain)?))
            }
        }
    }

    /// Erases the personal data of every enrollment the server acknowledged (outbox `done`):
    /// the sealed data and the outbox payload. Returns how many were erased.
    pub fn erase_acknowledged(&mut self, at: DateTime<FixedOffset>) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let ops: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT e.op_id FROM enrollments e JOIN outbox o ON o.op_id = e.op_id
                 WHERE o.state = 'done' AND e.erased_at IS NULL AND e.sealed IS NOT NULL",
            )?;
            let rows = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        let at = at.to_rfc3339();
        for op in &ops {
            erase_personal_data(&tx, op, &at)?;
        }
        tx.commit()?;
        Ok(ops.len())
    }

    /// The card data of an enrollment confirmed here.
    pub fn enrollment_card(&self, op_id: &str) -> Result<Option<EnrollmentCard>> {
        let row: Option<CardRow> = self
            .conn
            .query_row(
                "SELECT e.local_no, e.name, e.day, o.member_number, e.place, e.erased_at,
                        e.card_token, e.card_printed_at
                     FROM enrollments e LEFT JOIN outbox o ON o.op_id = e.op_id
                     WHERE e.op_id = ?1",
                [op_id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |(local_no, name, day, member_no, place, erased, card_token, printed)| {
                Ok(EnrollmentCard {
                    local_no,
                    op_id: op_id.to_owned(),
                    masked_name: name,
                    day: day.parse()?,
                    member_no,
                    place,
                    erased: erased.is_some(),
                    card_token,
                    card_printed: printed.is_some(),
                })
            },
        )
        .transpose()
    }

    /// Erases a printed member card's secrets, its signed token and its PIN check (salt and
    /// tag): the card is the member's now, and a stolen kiosk holds no card that spends
    /// points. What stays is that it was printed, and when. `false` when there was no signed
    /// card to erase.
    pub fn erase_printed_card(&mut self, op_id: &str, at: DateTime<FixedOffset>) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE enrollments SET card_token = NULL, card_salt = NULL, card_tag = NULL,
                 card_printed_at = ?2
                 WHERE op_id = ?1 AND card_token IS NOT NULL",
            params![op_id, at.to_rfc3339()],
        )?;
        Ok(changed == 1)
    }

    /// The PIN check of the card asked for this sign-up, if one was asked before.
    pub fn card_check(&self, op_id: &str) -> Result<Option<CardCheck>> {
        type Row = (Option<u16>, Option<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT card_serial, card_cost, card_salt, card_tag FROM enrollments
                     WHERE op_id = ?1",
                [op_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((Some(serial), Some(cost), Some(salt), Some(tag))) = row else {
            return Ok(None);
        };
        Ok(Some(CardCheck {
            serial,
            cost,
            salt: salt
                .try_into()
                .map_err(|_| anyhow::anyhow!("the stored card salt is not 8 bytes"))?,
            tag: tag
                .try_into()
                .map_err(|_| anyhow::anyhow!("the stored PIN check is not 2 bytes"))?,
        }))
    }

    /// Keeps the PIN check of the card about to be asked for, durably, before the request
    /// leaves, so that a retry (even after a restart) asks for the same card.
    pub fn keep_card_check(&mut self, op_id: &str, check: &CardCheck) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE enrollments SET card_serial = ?2, card_cost = ?3, card_salt = ?4,
                 card_tag = ?5
                 WHERE op_id = ?1 AND card_token IS NULL",
            params![
                op_id,
                check.serial,
                check.cost,
                &check.salt[..],
                &check.tag[..]
            ],
        )?;
        anyhow::ensure!(changed == 1, "no sign-up {op_id} waiting for a card");
        Ok(())
    }

    /// Keeps the card's token the server signed.
    pub fn keep_card_token(&mut self, op_id: &str, token: &str) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE enrollments SET card_token = ?2
                 WHERE op_id = ?1 AND card_printed_at IS NULL",
            params![op_id, token],
        )?;
        anyhow::ensure!(
            changed == 1,
            "no sign-up {op_id} whose card is still to print"
        );
        Ok(())
    }

    /// Issues the next numbered ticket at `site` for `day`, or returns the one this person
    /// already holds for that day.
    pub fn issue_ticket(
        &mut self,
        site: &str,
        day: NaiveDate,
        person_key: &str,
        at: DateTime<FixedOffset>,
    ) -> Result<Ticket> {
        let tx = self.conn.transaction()?;
        let held: Option<u32> = tx
            .query_row(
                "SELECT number FROM admission_tickets WHERE site = ?1 AND day = ?2 AND person_key = ?3",
                params![site, day.to_string(), person_key],
                |r| r.get(0),
            )
            .optional()?;
        let number = match held {
            Some(n) => n,
            None => {
                let next: u32 = tx.query_row(
                    "SELECT coalesce(max(number), 0) + 1 FROM admission_tickets WHERE site = ?1 AND day = ?2",
                    params![site, day.to_string()],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO admission_tickets(site, day, number, person_key, issued_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![site, day.to_string(), next, person_key, at.to_rfc3339()],
                )?;
                next
            }
        };
        tx.commit()?;
        Ok(Ticket { day, number })
    }

    /// The key personal data is sealed with: `sealing.key` in the database's secrets folder
    /// ([`crate::secrets`]), made on first use (a `<database>.key` beside the database, where
    /// earlier versions kept it, is moved there).
    fn personal_key(&self) -> Result<[u8; 32]> {
        if let Some(key) = self.personal_key.get() {
            return Ok(*key);
        }
        let key = self.personal_key_from_file()?;
        Ok(*self.personal_key.get_or_init(|| key))
    }

    fn personal_key_from_file(&self) -> Result<[u8; 32]> {
        use crate::secrets::{read, write, SEALING_KEY};
        if let Some(key) = read(&self.path, SEALING_KEY)? {
            return Ok(key);
        }
        let old = old_key_path(&self.path);
        if let Ok(bytes) = std::fs::read(&old) {
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("the key file {} is not 32 bytes", old.display()))?;
            write(&self.path, SEALING_KEY, &key, false)?;
            std::fs::remove_file(&old)
                .with_context(|| format!("removing the old key file {}", old.display()))?;
            return Ok(key);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| anyhow::anyhow!("no randomness for the data key: {e}"))?;
        // Another process may make it first: theirs is kept and used.
        match write(&self.path, SEALING_KEY, &key, false) {
            Ok(()) => Ok(key),
            Err(e) => read(&self.path, SEALING_KEY)?.ok_or(e),
        }
    }
}

/// A sign-up's outbox entry as stored: where its personal data is (sealed in `enrollments`,
/// or in the clear in databases older than sealing), with what the kiosk checked, which
/// stays here.
#[derive(Serialize, Deserialize)]
struct StoredEnrollment {
    #[serde(default)]
    sealed_personal_data: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    age: Option<u32>,
    /// The day the kiosk admitted the person under its lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
}

impl Store {
    /// The payload to send for an enrollment whose outbox entry marks its personal data as
    /// sealed: the marker replaced by the opened name, birth date and phone.
    /// The `enrollment` payload the server takes for a sign-up's outbox entry: its personal
    /// data unsealed (or, from databases older than sealing, as stored), and only the fields
    /// of [`EnrollmentPayload`].
    pub(crate) fn enrollment_payload(&self, op_id: &str, stored: &str) -> Result<OpPayload> {
        let stored: StoredEnrollment = serde_json::from_str(stored)
            .with_context(|| format!("reading the outbox entry of sign-up {op_id}"))?;
        let (name, birth_date, phone) = if stored.sealed_personal_data {
            let personal = self.personal_data(op_id)?.with_context(|| {
                format!(
                    "가입 {op_id}의 개인정보가 없어 보낼 수 없습니다 / the personal data of \
                     sign-up {op_id} is gone, so it cannot be sent"
                )
            })?;
            (
                personal.name,
                personal.birth_date.to_string(),
                personal.phone,
            )
        } else {
            match (stored.name, stored.birth_date, stored.phone) {
                (Some(name), Some(birth_date), Some(phone)) => (name, birth_date, phone),
                _ => bail!("the outbox entry of sign-up {op_id} has no personal data"),
            }
        };
        Ok(OpPayload::Enrollment(EnrollmentPayload {
            name,
            birth_date,
            phone,
            day: stored.day,
        }))
    }
}

/// Erases the personal data of sign-up `op_id` (its sealed data and its outbox payload), if it
/// is a sign-up whose data is still here; anything else is left alone.
pub(crate) fn erase_personal_data(
    tx: &rusqlite::Transaction<'_>,
    op_id: &str,
    at: &str,
) -> Result<()> {
    let erased = tx
        .prepare_cached(
            "UPDATE enrollments SET sealed = NULL, erased_at = ?2
             WHERE op_id = ?1 AND erased_at IS NULL AND sealed IS NOT NULL",
        )?
        .execute(params![op_id, at])?;
    if erased == 1 {
        tx.prepare_cached(
            "UPDATE outbox SET payload = '{\"erased\":true}' WHERE op_id = ?1 AND kind = 'enrollment'",
        )?
        .execute([op_id])?;
    }
    Ok(())
}

/// Where the data key of the database at `db` lives.
pub fn key_path(db: &std::path::Path) -> PathBuf {
    crate::secrets::secret_path(db, crate::secrets::SEALING_KEY)
}

/// Where versions before the secrets folder kept the data key: `<database>.key`.
fn old_key_path(db: &std::path::Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".key");
    db.with_file_name(name)
}

fn seal(key: &[u8; 32], op_id: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness for a nonce: {e}"))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: op_id.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("sealing personal data failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(key: &[u8; 32], op_id: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.len() < 12 {
        bail!("sealed personal data is too short");
    }
    let (nonce, sealed) = bytes.split_at(12);
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: op_id.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("the personal data of {op_id} does not open with this key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiosk_core::consent::{check_consents, current_items, ConsentAnswer};
    use kiosk_core::Residency;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn enrollment() -> Enrollment {
        Enrollment {
            name: "김영수".to_owned(),
            birth_date: "1950-03-01".parse().unwrap(),
            phone: "01012345678".to_owned(),
            residency: Residency::Lives,
            age: 75,
        }
    }

    fn consents() -> ConsentRecord {
        let answers: Vec<ConsentAnswer> = current_items()
            .iter()
            .map(|i| ConsentAnswer {
                id: i.id.clone(),
                version: i.version.clone(),
                agreed: i.required,
                at: at("2025-12-03T10:00:00+09:00"),
            })
            .collect();
        check_consents(&current_items(), &answers).unwrap()
    }

    fn record<'a>(
        op_id: &'a str,
        e: &'a Enrollment,
        c: &'a ConsentRecord,
        place: Option<(&'a str, u32)>,
    ) -> KioskEnrollment<'a> {
        KioskEnrollment {
            op_id,
            site: "jongno",
            enrollment: e,
            consents: c,
            guardian_phone: Some("01099990000"),
            place,
            at: at("2025-12-03T10:00:00+09:00"),
        }
    }

    fn raw_contains(path: &std::path::Path, needle: &str) -> bool {
        let bytes = std::fs::read(path).unwrap();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = std::fs::read(wal).unwrap_or_default();
        let n = needle.as_bytes();
        bytes.windows(n.len()).any(|w| w == n) || wal.windows(n.len()).any(|w| w == n)
    }

    #[test]
    fn schedule_and_lease_are_read_as_pulled_and_places_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("k.sqlite")).unwrap();
        assert_eq!(s.admission_schedule().unwrap(), None);
        let day: NaiveDate = "2025-12-03".parse().unwrap();
        s.conn
            .execute(
                "INSERT INTO pull_state(only_row, admission) VALUES (1, ?1)",
                [r#"{"days":{"2025-12-03":{"rule":"odd_birth_years"}}}"#],
            )
            .unwrap();
        s.conn
            .execute(
                "INSERT INTO quota_leases VALUES ('L-1', 'jongno', '2025-12-03', 5, 2)",
                [],
            )
            .unwrap();
        let sched = s.admission_schedule().unwrap().unwrap();
        assert_eq!(
            sched.rule_on(day),
            kiosk_core::admission::DayRule::OddBirthYears
        );
        let lease = s.quota_lease("jongno", day).unwrap().unwrap();
        assert_eq!((lease.places, lease.used), (5, 2));
        assert!(s.quota_lease("mapo", day).unwrap().is_none());
        let (e, c) = (enrollment(), consents());
        s.record_kiosk_enrollment(&record("op-1", &e, &c, Some(("L-1", 3))))
            .unwrap();
        assert_eq!(s.quota_lease("jongno", day).unwrap().unwrap().used, 3);
        // A pull replaces the lease with the server's count, which has not seen this one yet.
        s.conn
            .execute(
                "UPDATE quota_leases SET used = 2 WHERE lease_id = 'L-1'",
                [],
            )
            .unwrap();
        assert_eq!(s.quota_lease("jongno", day).unwrap().unwrap().used, 3);
        // Acknowledged, then pulled again: the server's count includes it.
        s.settle(
            &[crate::FinalAnswer::Done {
                op_id: "op-1".into(),
                duplicate: false,
                member_number: None,
            }],
            at("2025-12-03T10:05:00+09:00"),
        )
        .unwrap();
        assert_eq!(s.quota_lease("jongno", day).unwrap().unwrap().used, 3);
        s.conn
            .execute_batch(
                "UPDATE quota_leases SET used = 3;
                 UPDATE pull_state SET last_pull = '2025-12-03T10:06:00+09:00';",
            )
            .unwrap();
        assert_eq!(s.quota_lease("jongno", day).unwrap().unwrap().used, 3);
    }

    #[test]
    fn personal_data_is_sealed_found_as_a_duplicate_and_erased_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        let mut s = Store::open(&path).unwrap();
        let (e, c) = (enrollment(), consents());
        let done = s
            .record_kiosk_enrollment(&record("op-1", &e, &c, None))
            .unwrap();
        assert_eq!(done.name, "김*수");
        assert_eq!(done.age, 75);
        let again = s
            .record_kiosk_enrollment(&record("op-1", &e, &c, None))
            .unwrap();
        assert_eq!(done, again);
        assert_eq!(s.outbox_queued().unwrap(), 1);
        // Sealed at rest: the key file is private, the name and phone are not in the file's
        // enrollment row.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&path))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let plain: (String, String) = s
            .conn
            .query_row(
                "SELECT name, phone FROM enrollments WHERE op_id = 'op-1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(plain, ("김*수".to_owned(), String::new()));
        let personal = s.personal_data("op-1").unwrap().unwrap();
        assert_eq!(personal.name, "김영수");
        assert_eq!(personal.guardian_phone.as_deref(), Some("01099990000"));

        // The same person (spaces, punctuation aside) is found; another is not.
        let found = s
            .find_person("김 영수", e.birth_date, "010-1234-5678")
            .unwrap()
            .unwrap();
        assert_eq!(found.local_no, Some(1));
        assert!(s
            .find_person("김영수", e.birth_date, "01012345679")
            .unwrap()
            .is_none());

        // What the sync sends is opened from the sealed data.
        let pending = s.outbox_pending().unwrap();
        let sent: serde_json::Value = serde_json::from_str(&pending[0].payload).unwrap();
        assert_eq!(sent["name"], "김영수");
        assert_eq!(sent["phone"], "01012345678");
        assert_eq!(sent["birth_date"], e.birth_date.to_string());
        assert_eq!(sent["day"], "2025-12-03");

        // Acknowledged: sealed data and payload erased as the answer is recorded, whichever
        // shell synced it; the list and duplicates still work.
        s.settle(
            &[crate::FinalAnswer::Done {
                op_id: "op-1".into(),
                duplicate: false,
                member_number: Some("PP-0099".into()),
            }],
            at("2025-12-03T11:00:00+09:00"),
        )
        .unwrap();
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        // Nothing personal in the clear, not even in the queued payload.
        assert!(!raw_contains(&path, "01012345678"));
        assert!(!raw_contains(&path, "김영수"));
        assert!(s.personal_data("op-1").unwrap().is_none());
        // Nothing is left for the app's sweep (kept for databases answered before this).
        assert_eq!(
            s.erase_acknowledged(at("2025-12-03T11:00:00+09:00"))
                .unwrap(),
            0
        );
        let card = s.enrollment_card("op-1").unwrap().unwrap();
        assert_eq!(card.member_no.as_deref(), Some("PP-0099"));
        assert!(card.erased);
        let list = s.enrollments_on("2025-12-03".parse().unwrap()).unwrap();
        assert_eq!((list[0].name.as_str(), list[0].age), ("김*수", 75));
        let found = s
            .find_person("김영수", e.birth_date, "01012345678")
            .unwrap()
            .unwrap();
        assert_eq!(found.member_no.as_deref(), Some("PP-0099"));
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        assert!(!raw_contains(&path, "01012345678"));
        assert!(!raw_contains(&path, "김영수"));

        // The member card: its PIN check kept, its token signed, then printed: token, salt and
        // tag are gone from the file, and a second card token is not taken for it.
        let check = CardCheck {
            serial: 1,
            cost: 14,
            salt: *b"SALTsalt",
            tag: [0xab, 0xcd],
        };
        s.keep_card_check("op-1", &check).unwrap();
        s.keep_card_token("op-1", "PP1:CARDTOKENTEXT").unwrap();
        assert_eq!(s.card_check("op-1").unwrap(), Some(check));
        let printed_at = at("2025-12-03T11:05:00+09:00");
        assert!(s.erase_printed_card("op-1", printed_at).unwrap());
        assert!(!s.erase_printed_card("op-1", printed_at).unwrap());
        let card = s.enrollment_card("op-1").unwrap().unwrap();
        assert_eq!(card.card_token, None);
        assert!(card.card_printed);
        assert_eq!(s.card_check("op-1").unwrap(), None);
        assert!(s.keep_card_token("op-1", "PP1:ANOTHER").is_err());
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        assert!(!raw_contains(&path, "PP1:CARDTOKENTEXT"));
        assert!(!raw_contains(&path, "SALTsalt"));
    }

    #[test]
    fn tickets_are_numbered_per_day_and_one_per_person() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("k.sqlite")).unwrap();
        let day: NaiveDate = "2025-12-05".parse().unwrap();
        let now = at("2025-12-03T10:00:00+09:00");
        assert_eq!(s.issue_ticket("jongno", day, "a", now).unwrap().number, 1);
        assert_eq!(s.issue_ticket("jongno", day, "b", now).unwrap().number, 2);
        assert_eq!(s.issue_ticket("jongno", day, "a", now).unwrap().number, 1);
        let other: NaiveDate = "2025-12-06".parse().unwrap();
        assert_eq!(s.issue_ticket("jongno", other, "a", now).unwrap().number, 1);
    }
}
