//! Watches and the history read from them: who each watch is paired to, the last record
//! stored, the records themselves, and the step reports a sync produced.

use anyhow::{bail, Result};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use merchant_core::watch_sync::{Sample, WatchOwner, WatchRecord};
use points_core::StepReport;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use sync_protocol::wire::{OpPayload, StepReportPayload, WatchPairingPayload, WatchProof};
use watch_protocol::proof::hex;
use watch_protocol::DayProof;

use crate::{Store, StoredStepReport};

/// A watch as the terminal knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredWatch {
    pub serial: String,
    pub owner: WatchOwner,
    /// The last sequence number stored from it; none before its first sync.
    pub last_seq: Option<u32>,
    pub last_synced_at: Option<DateTime<FixedOffset>>,
}

/// What one sync of a member's watch writes, all in one transaction.
#[derive(Debug, Clone)]
pub struct WatchSync<'a> {
    pub serial: &'a str,
    pub member_no: &'a str,
    /// The records read (already known ones are kept once).
    pub records: &'a [WatchRecord],
    /// The last sequence number stored once this sync is written.
    pub last_seq: Option<u32>,
    /// The step reports to store and queue, each with the operation id it is sent under and
    /// the watch's proof of it, when the watch signed it.
    pub reports: &'a [(String, StepReport, Option<DayProof>)],
    /// The Watch Certificate's bytes as read, which go with each proof.
    pub certificate: Option<&'a [u8]>,
    /// The operation id the `watch_pairing` is sent under if this sync pairs a watch unknown
    /// here to the member (unused otherwise).
    pub pairing_op_id: &'a str,
    /// The member's redemption token, scanned at the counter: the proof of presence the
    /// server asks of a pairing by member number. A watch unknown here is not paired without
    /// it.
    pub token: Option<&'a str>,
    pub at: DateTime<FixedOffset>,
}

impl Store {
    /// The watch with this serial, if it is known here.
    pub fn watch(&self, serial: &str) -> Result<Option<StoredWatch>> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<u32>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT serial, member_no, enrollment_op, last_seq, last_synced_at
                 FROM watches WHERE serial = ?1",
                [serial],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((serial, member_no, enrollment_op, last_seq, synced)) = row else {
            return Ok(None);
        };
        let owner = match (member_no, enrollment_op) {
            (Some(m), _) => WatchOwner::Member(m),
            (None, Some(e)) => WatchOwner::Enrollment(e),
            (None, None) => bail!("watch {serial} has no owner"),
        };
        Ok(Some(StoredWatch {
            serial,
            owner,
            last_seq,
            last_synced_at: synced
                .map(|s| DateTime::parse_from_rfc3339(&s))
                .transpose()?,
        }))
    }

    /// Pairs a watch unknown here to `owner`. A watch already known is left as it is (the
    /// caller checks who it belongs to first). Returns whether it was new.
    pub fn pair_watch(
        &self,
        serial: &str,
        owner: &WatchOwner,
        at: DateTime<FixedOffset>,
    ) -> Result<bool> {
        let (member_no, enrollment_op) = match owner {
            WatchOwner::Member(m) => (Some(m.as_str()), None),
            WatchOwner::Enrollment(e) => (None, Some(e.as_str())),
        };
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO watches(serial, member_no, enrollment_op, paired_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![serial, member_no, enrollment_op, at.to_rfc3339()],
        )?;
        Ok(added == 1)
    }

    /// Pairs a watch unknown here to `owner` and queues the pairing for the central server as a
    /// `watch_pairing` operation under `op_id`, in one transaction. A watch already known is
    /// left as it is and nothing is queued (the caller checks who it belongs to first).
    /// Returns whether it was new.
    ///
    /// A pairing to a kiosk enrollment names the enrollment's op id; the enrollment was queued
    /// when it was confirmed, so it is earlier in the outbox, which is sent in order, and the
    /// server has applied it by the time the pairing arrives.
    pub fn record_watch_pairing(
        &mut self,
        serial: &str,
        owner: &WatchOwner,
        op_id: &str,
        at: DateTime<FixedOffset>,
    ) -> Result<bool> {
        self.in_transaction(|s| s.pair_and_queue(serial, owner, None, op_id, at))
    }

    /// A pairing to a member (not a kiosk's own sign-up) carries the member's `token` and
    /// the time; without a token nothing is paired.
    fn pair_and_queue(
        &self,
        serial: &str,
        owner: &WatchOwner,
        token: Option<&str>,
        op_id: &str,
        at: DateTime<FixedOffset>,
    ) -> Result<bool> {
        if !self.pair_watch(serial, owner, at)? {
            return Ok(false);
        }
        let payload = match owner {
            WatchOwner::Member(m) => {
                let Some(token) = token else {
                    bail!(
                        "watch {serial} is new here: it is paired to member {m} only with the \
                         member's token"
                    );
                };
                WatchPairingPayload {
                    serial: serial.to_owned(),
                    member_number: Some(m.to_string()),
                    enrollment_op_id: None,
                    token: Some(token.to_owned()),
                    paired_at: Some(at.to_rfc3339()),
                }
            }
            WatchOwner::Enrollment(e) => WatchPairingPayload {
                serial: serial.to_owned(),
                member_number: None,
                enrollment_op_id: Some(e.to_string()),
                token: None,
                paired_at: None,
            },
        };
        let payload = OpPayload::WatchPairing(payload);
        self.queue_operation(op_id, &payload, at)?;
        Ok(true)
    }

    /// The serials paired to a kiosk enrollment.
    pub fn watches_of_enrollment(&self, op_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT serial FROM watches WHERE enrollment_op = ?1 ORDER BY serial")?;
        let rows = stmt
            .query_map([op_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// Writes one sync of a member's watch: pairs it to the member if it was unknown (and
    /// queues that as a `watch_pairing` operation), keeps the records, moves its last sequence
    /// number, stores the step reports and queues each as a `step_report` operation, all or
    /// nothing. Writing the same sync again adds nothing.
    pub fn record_watch_sync(&mut self, sync: &WatchSync<'_>) -> Result<()> {
        self.in_transaction(|s| {
            s.pair_and_queue(
                sync.serial,
                &WatchOwner::Member(sync.member_no.to_owned()),
                sync.token,
                sync.pairing_op_id,
                sync.at,
            )?;
            for r in sync.records {
                let (kind, day, hour, at, value) = match r.sample {
                    Sample::DaySteps { date, steps, .. } => ("day_steps", date, None, None, steps),
                    Sample::HourSteps { date, hour, steps } => {
                        ("hour_steps", date, Some(hour), None, steps)
                    }
                    Sample::HeartRate { at, bpm } => (
                        "heart_rate",
                        at.date(),
                        None,
                        Some(at.format("%Y-%m-%dT%H:%M:%S").to_string()),
                        u32::from(bpm),
                    ),
                };
                s.conn.execute(
                    "INSERT OR IGNORE INTO watch_records(serial, seq, kind, day, hour, at, value)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![sync.serial, r.seq, kind, day.to_string(), hour, at, value],
                )?;
            }
            s.conn.execute(
                "UPDATE watches SET last_seq = max(coalesce(last_seq, ?2), ?2), last_synced_at = ?3
                 WHERE serial = ?1",
                params![sync.serial, sync.last_seq, sync.at.to_rfc3339()],
            )?;
            for (op_id, report, proof) in sync.reports {
                s.add_step_report(
                    sync.member_no,
                    &StoredStepReport {
                        day: report.day,
                        reported_at: report.reported_at,
                        steps: report.steps,
                    },
                )?;
                let payload = OpPayload::StepReport(StepReportPayload {
                    member_number: sync.member_no.to_owned(),
                    day: report.day.to_string(),
                    steps: report.steps,
                    reported_at: report.reported_at.to_rfc3339(),
                    watch: proof
                        .zip(sync.certificate)
                        .map(|(proof, certificate)| WatchProof {
                            serial: sync.serial.to_owned(),
                            certificate: hex(certificate),
                            counter: proof.counter,
                            signed_at: proof.signed_at,
                            signature: hex(&proof.signature),
                        }),
                });
                s.queue_operation(op_id, &payload, sync.at)?;
            }
            Ok(())
        })
    }

    /// Hourly step counts `(day, hour, steps)` from a member's watches for the days `from..=to`.
    pub fn hour_steps(
        &self,
        member_no: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, u8, u32)>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.day, r.hour, r.value FROM watch_records r JOIN watches w ON w.serial = r.serial
             WHERE w.member_no = ?1 AND r.kind = 'hour_steps' AND r.day BETWEEN ?2 AND ?3
             ORDER BY r.day, r.hour",
        )?;
        let rows = stmt
            .query_map(params![member_no, from.to_string(), to.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(day, hour, steps)| Ok((day.parse()?, hour, steps)))
            .collect()
    }

    /// Heart-rate samples from a member's watches for the days `from..=to`.
    pub fn heart_rate_samples(
        &self,
        member_no: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDateTime, u8)>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.at, r.value FROM watch_records r JOIN watches w ON w.serial = r.serial
             WHERE w.member_no = ?1 AND r.kind = 'heart_rate' AND r.day BETWEEN ?2 AND ?3
             ORDER BY r.at",
        )?;
        let rows = stmt
            .query_map(params![member_no, from.to_string(), to.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(at, bpm)| {
                Ok((
                    NaiveDateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M:%S")?,
                    u8::try_from(bpm)?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Member;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn member(store: &Store, no: &str) {
        store
            .put_member(&Member {
                member_no: no.into(),
                name: "김영희".into(),
                birth_date: d("1950-03-01"),
                phone: "01012345678".into(),
            })
            .unwrap();
    }

    #[test]
    fn a_watch_sync_is_stored_queued_once_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let when = at("2025-12-03T15:00:00+09:00");
        let records = [
            WatchRecord {
                seq: 0,
                sample: Sample::DaySteps {
                    date: d("2025-12-02"),
                    steps: 8100,
                    proof: None,
                },
            },
            WatchRecord {
                seq: 1,
                sample: Sample::HeartRate {
                    at: NaiveDateTime::parse_from_str("2025-12-02T09:00:00", "%Y-%m-%dT%H:%M:%S")
                        .unwrap(),
                    bpm: 101,
                },
            },
            WatchRecord {
                seq: 2,
                sample: Sample::HourSteps {
                    date: d("2025-12-02"),
                    hour: 9,
                    steps: 2300,
                },
            },
        ];
        let key = watch_protocol::WatchKey::from_seed([4; 32]);
        let certificate = watch_protocol::WatchCa::demo()
            .certify("PW-0042", key.public_key())
            .unwrap()
            .encode()
            .unwrap();
        let proof = key
            .sign_day("PW-0042", d("2025-12-02"), 8100, 7, 1_764_687_599)
            .unwrap();
        let reports = [(
            "op-a".to_owned(),
            StepReport {
                reported_at: when,
                day: d("2025-12-02"),
                steps: 8100,
            },
            Some(proof),
        )];
        let sync = WatchSync {
            serial: "PW-0042",
            member_no: "PP-0001",
            certificate: Some(&certificate),
            records: &records,
            last_seq: Some(2),
            reports: &reports,
            pairing_op_id: "op-pair",
            token: Some("PP1:the-members-token"),
            at: when,
        };
        {
            let mut s = Store::open(&path).unwrap();
            member(&s, "PP-0001");
            assert_eq!(s.watch("PW-0042").unwrap(), None);
            s.record_watch_sync(&sync).unwrap();
            s.record_watch_sync(&sync).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.watch("PW-0042").unwrap(),
            Some(StoredWatch {
                serial: "PW-0042".into(),
                owner: WatchOwner::Member("PP-0001".into()),
                last_seq: Some(2),
                last_synced_at: Some(when),
            })
        );
        assert_eq!(s.step_days("PP-0001").unwrap()[&d("2025-12-02")], 8100);
        let pending = s.outbox_pending().unwrap();
        let kinds: Vec<(&str, &str)> = pending
            .iter()
            .map(|p| (p.op_id.as_str(), p.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("op-pair", "watch_pairing"), ("op-a", "step_report")]
        );
        let pairing: serde_json::Value = serde_json::from_str(&pending[0].payload).unwrap();
        assert_eq!(
            pairing,
            serde_json::json!({
                "serial": "PW-0042",
                "member_number": "PP-0001",
                "token": "PP1:the-members-token",
                "paired_at": "2025-12-03T15:00:00+09:00",
            })
        );
        let payload: serde_json::Value = serde_json::from_str(&pending[1].payload).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "member_number": "PP-0001",
                "day": "2025-12-02",
                "steps": 8100,
                "reported_at": "2025-12-03T15:00:00+09:00",
                "watch": {
                    "serial": "PW-0042",
                    "certificate": hex(&certificate),
                    "counter": 7,
                    "signed_at": 1_764_687_599,
                    "signature": hex(&proof.signature),
                },
            })
        );
        let hr = s
            .heart_rate_samples("PP-0001", d("2025-12-01"), d("2025-12-07"))
            .unwrap();
        assert_eq!(hr.len(), 1);
        assert_eq!(hr[0].1, 101);
        assert_eq!(
            s.hour_steps("PP-0001", d("2025-12-01"), d("2025-12-07"))
                .unwrap(),
            [(d("2025-12-02"), 9, 2300)]
        );
    }

    #[test]
    fn a_new_watch_is_not_paired_to_a_member_without_the_members_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let when = at("2025-12-03T15:00:00+09:00");
        member(&s, "PP-0001");
        let reports = [(
            "op-a".to_owned(),
            StepReport {
                reported_at: when,
                day: d("2025-12-02"),
                steps: 8100,
            },
            None,
        )];
        let sync = WatchSync {
            serial: "PW-0042",
            member_no: "PP-0001",
            certificate: None,
            records: &[],
            last_seq: None,
            reports: &reports,
            pairing_op_id: "op-pair",
            token: None,
            at: when,
        };
        let refused = s.record_watch_sync(&sync).unwrap_err();
        assert!(refused.to_string().contains("token"), "{refused}");
        // Nothing of the sync was kept: no watch, no step report, nothing queued.
        assert_eq!(s.watch("PW-0042").unwrap(), None);
        assert!(s.step_days("PP-0001").unwrap().is_empty());
        assert!(s.outbox_pending().unwrap().is_empty());
    }

    #[test]
    fn a_watch_is_paired_to_one_owner_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let when = at("2025-12-03T10:00:00+09:00");
        let e = kiosk_core::check_applicant(
            &kiosk_core::Applicant {
                name: "김영희".into(),
                birth_date: d("1950-03-01"),
                phone: "010-1234-5678".into(),
                residency: kiosk_core::Residency::Lives,
            },
            d("2025-12-03"),
        )
        .unwrap();
        s.record_enrollment("op-1", "jongno", &e, when).unwrap();
        let owner = WatchOwner::Enrollment("op-1".into());
        assert!(s.pair_watch("PW-0007", &owner, when).unwrap());
        assert!(!s
            .pair_watch("PW-0007", &WatchOwner::Enrollment("op-2".into()), when)
            .unwrap());
        assert_eq!(s.watch("PW-0007").unwrap().unwrap().owner, owner);
        assert_eq!(s.watches_of_enrollment("op-1").unwrap(), ["PW-0007"]);
    }

    #[test]
    fn a_kiosk_pairing_is_queued_after_its_enrollment_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let when = at("2025-12-03T10:00:00+09:00");
        let e = kiosk_core::check_applicant(
            &kiosk_core::Applicant {
                name: "김영희".into(),
                birth_date: d("1950-03-01"),
                phone: "010-1234-5678".into(),
                residency: kiosk_core::Residency::Lives,
            },
            d("2025-12-03"),
        )
        .unwrap();
        s.record_enrollment("op-1", "jongno", &e, when).unwrap();
        let owner = WatchOwner::Enrollment("op-1".into());
        assert!(s
            .record_watch_pairing("PW-0007", &owner, "op-pair", when)
            .unwrap());
        // Known already: nothing more is queued, whoever asks.
        assert!(!s
            .record_watch_pairing("PW-0007", &owner, "op-pair-2", when)
            .unwrap());
        assert!(!s
            .record_watch_pairing(
                "PW-0007",
                &WatchOwner::Member("PP-0002".into()),
                "op-pair-3",
                when
            )
            .unwrap());
        assert_eq!(s.watch("PW-0007").unwrap().unwrap().owner, owner);
        let pending = s.outbox_pending().unwrap();
        let kinds: Vec<(&str, &str)> = pending
            .iter()
            .map(|p| (p.op_id.as_str(), p.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("op-1", "enrollment"), ("op-pair", "watch_pairing")]
        );
        let payload: serde_json::Value = serde_json::from_str(&pending[1].payload).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({ "serial": "PW-0007", "enrollment_op_id": "op-1" })
        );
    }
}
