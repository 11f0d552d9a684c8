//! The members' watches. Every existing member wears a Palpal watch certified by the
//! demonstration watch authority, which signs its day totals as a real one does; the server
//! of the replay trusts that authority, so every step report goes through the server's real
//! checks of watch proofs (`docs/watch-gatt.md`, "Signed steps").

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, FixedOffset, NaiveDate};
use sync_protocol::wire::WatchProof;
use watch_protocol::proof::hex;
use watch_protocol::{WatchCa, WatchKey};

/// The watch of each existing member, by the member's index.
pub struct Watches {
    seed: u64,
    ca: WatchCa,
    /// Counters of live proofs: above any the day before used (those are numbered by report).
    next: AtomicU32,
}

impl Watches {
    /// The watches of a day drawn from `seed`.
    pub fn new(seed: u64) -> Watches {
        Watches {
            seed,
            ca: WatchCa::demo(),
            next: AtomicU32::new(1 << 30),
        }
    }

    /// The serial of member `member`'s watch.
    pub fn serial(member: usize) -> String {
        format!("WE-{member:08}")
    }

    fn key(&self, member: usize) -> WatchKey {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&(member as u64).to_le_bytes());
        seed[16] = 0x77;
        WatchKey::from_seed(seed)
    }

    /// Member `member`'s watch's proof of `steps` on `day`, signed at `at` with `counter`.
    pub fn proof(
        &self,
        member: usize,
        day: NaiveDate,
        steps: u32,
        at: DateTime<FixedOffset>,
        counter: u32,
    ) -> anyhow::Result<WatchProof> {
        let serial = Self::serial(member);
        let key = self.key(member);
        let certificate = self
            .ca
            .certify(&serial, key.public_key())
            .and_then(|c| c.encode())
            .map_err(|e| anyhow::anyhow!("certifying {serial}: {e}"))?;
        let signed_at = u32::try_from(at.timestamp())?;
        let proof = key
            .sign_day(&serial, day, steps, counter, signed_at)
            .map_err(|e| anyhow::anyhow!("signing for {serial}: {e}"))?;
        Ok(WatchProof {
            serial,
            certificate: hex(&certificate),
            counter,
            signed_at,
            signature: hex(&proof.signature),
        })
    }

    /// A proof made now, at a counter: its counter is the next live one.
    pub fn live_proof(
        &self,
        member: usize,
        day: NaiveDate,
        steps: u32,
        at: DateTime<FixedOffset>,
    ) -> anyhow::Result<WatchProof> {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        self.proof(member, day, steps, at, counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_member_has_a_certified_watch_whose_proofs_verify() {
        let watches = Watches::new(7);
        let at = DateTime::parse_from_rfc3339("2025-12-02T21:00:00+09:00").unwrap();
        let day: NaiveDate = "2025-12-02".parse().unwrap();
        let proof = watches.proof(3, day, 8_000, at, 1).unwrap();
        let bytes = watch_protocol::proof::unhex(&proof.certificate).unwrap();
        let certificate = watch_protocol::WatchCertificate::decode(&bytes).unwrap();
        certificate.verify(&[WatchCa::demo().public_key()]).unwrap();
        let signature: [u8; 64] = watch_protocol::proof::unhex(&proof.signature)
            .unwrap()
            .try_into()
            .unwrap();
        let day_proof = watch_protocol::DayProof {
            counter: 1,
            signed_at: proof.signed_at,
            signature,
        };
        certificate
            .verify_day("WE-00000003", day, 8_000, &day_proof)
            .unwrap();
        assert_ne!(
            watches.proof(4, day, 8_000, at, 1).unwrap().certificate,
            proof.certificate
        );
        let live = watches.live_proof(3, day, 9_000, at).unwrap();
        assert!(live.counter >= 1 << 30);
    }
}
