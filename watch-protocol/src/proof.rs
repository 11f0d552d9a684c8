//! Steps the watch signs, and the certificate that says the watch is one of the program's.
//!
//! A payment card signs its transaction and the terminal only carries it; a Palpal watch does
//! the same with its day totals. Each watch holds an Ed25519 key made at manufacture and a
//! [`WatchCertificate`]: the program's watch certificate authority's signature over the
//! watch's serial number and public key. Each day-steps record the watch stores carries a
//! [`DayProof`]: the watch's signature over the member-independent facts (serial, day, steps,
//! the watch's own monotonic counter and its clock at signing). The terminal reads both and
//! passes them on; the central server checks them and credits steps only from a certified
//! watch paired to the member. Nothing here knows about members.
//!
//! Byte layouts, with a worked example, are in `docs/watch-gatt.md` ("Signed steps").

use chrono::NaiveDate;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::history::FIRST_DATE;

/// The first bytes of what a watch signs for a day.
const DAY_CONTEXT: &[u8] = b"PALPAL-WATCH-DAY-1";
/// The first bytes of what the certificate authority signs for a watch.
const CERT_CONTEXT: &[u8] = b"PALPAL-WATCH-CERT-1";
/// The certificate encoding's version byte.
const CERT_VERSION: u8 = 1;
/// The longest serial number a certificate carries (the Serial Number String's limit here).
pub const MAX_SERIAL_LEN: usize = 64;

/// The seed of the demonstration watch certificate authority: the watch simulator's watches
/// are certified by it, and the demo and tests trust it. Never trusted by a real deployment.
pub const DEMO_WATCH_CA_SEED: [u8; 32] = *b"palpal demo watch CA, not secret";

/// A watch's signature over one day's steps, made when the watch stored the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayProof {
    /// The watch's own counter, one more for every proof it signs: never repeats.
    pub counter: u32,
    /// The watch's clock when it signed, Unix seconds.
    pub signed_at: u32,
    /// Ed25519 over [`day_message`].
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// Why a proof or a certificate does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The certificate's bytes are not a certificate.
    #[error("watch certificate is malformed: {0}")]
    Malformed(&'static str),
    /// No trusted certificate authority signed this certificate.
    #[error("watch certificate is not signed by a trusted certificate authority")]
    NotCertified,
    /// The certificate is for another watch.
    #[error("watch certificate is for serial {certified}, not {claimed}")]
    OtherWatch {
        /// The serial in the certificate.
        certified: String,
        /// The serial the record claims.
        claimed: String,
    },
    /// The day's signature does not verify: the record was altered or not made by this watch.
    #[error("the day's signature does not verify")]
    BadSignature,
    /// The date cannot be carried (before 2000-01-01 or after 2179).
    #[error("date out of range")]
    Date,
}

/// Exactly what a watch signs for a day: the context, the serial (length first), the day
/// number (days since 2000-01-01, u16 LE), steps, counter and signing time (u32 LE each).
pub fn day_message(
    serial: &str,
    date: NaiveDate,
    steps: u32,
    counter: u32,
    signed_at: u32,
) -> Result<Vec<u8>, ProofError> {
    let day = u16::try_from((date - FIRST_DATE).num_days()).map_err(|_| ProofError::Date)?;
    let serial = serial_bytes(serial)?;
    let mut m = Vec::with_capacity(DAY_CONTEXT.len() + 1 + serial.len() + 14);
    m.extend_from_slice(DAY_CONTEXT);
    m.push(serial.len() as u8);
    m.extend_from_slice(serial);
    m.extend_from_slice(&day.to_le_bytes());
    m.extend_from_slice(&steps.to_le_bytes());
    m.extend_from_slice(&counter.to_le_bytes());
    m.extend_from_slice(&signed_at.to_le_bytes());
    Ok(m)
}

fn serial_bytes(serial: &str) -> Result<&[u8], ProofError> {
    let bytes = serial.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_SERIAL_LEN {
        return Err(ProofError::Malformed("serial number length"));
    }
    Ok(bytes)
}

/// A watch's own key, made at manufacture; it never leaves the watch.
#[derive(Clone)]
pub struct WatchKey(SigningKey);

impl std::fmt::Debug for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WatchKey").field(&"…").finish()
    }
}

impl WatchKey {
    /// The key made from 32 secret bytes.
    pub fn from_seed(seed: [u8; 32]) -> WatchKey {
        WatchKey(SigningKey::from_bytes(&seed))
    }

    /// The public half, which the certificate carries.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs a day's steps as the watch stores them.
    pub fn sign_day(
        &self,
        serial: &str,
        date: NaiveDate,
        steps: u32,
        counter: u32,
        signed_at: u32,
    ) -> Result<DayProof, ProofError> {
        let message = day_message(serial, date, steps, counter, signed_at)?;
        Ok(DayProof {
            counter,
            signed_at,
            signature: self.0.sign(&message).to_bytes(),
        })
    }
}

/// The program's watch certificate authority: it certifies each watch at manufacture.
#[derive(Clone)]
pub struct WatchCa(SigningKey);

impl std::fmt::Debug for WatchCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WatchCa")
            .field(&hex(&self.public_key()))
            .finish()
    }
}

impl WatchCa {
    /// The authority made from 32 secret bytes.
    pub fn from_seed(seed: [u8; 32]) -> WatchCa {
        WatchCa(SigningKey::from_bytes(&seed))
    }

    /// The demonstration authority ([`DEMO_WATCH_CA_SEED`]).
    pub fn demo() -> WatchCa {
        WatchCa::from_seed(DEMO_WATCH_CA_SEED)
    }

    /// The public key the central server trusts.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Certifies that the watch `serial` holds the key `public_key`.
    pub fn certify(
        &self,
        serial: &str,
        public_key: [u8; 32],
    ) -> Result<WatchCertificate, ProofError> {
        let message = cert_message(serial, &public_key)?;
        Ok(WatchCertificate {
            serial: serial.to_owned(),
            public_key,
            signature: self.0.sign(&message).to_bytes(),
        })
    }
}

fn cert_message(serial: &str, public_key: &[u8; 32]) -> Result<Vec<u8>, ProofError> {
    let serial = serial_bytes(serial)?;
    let mut m = Vec::with_capacity(CERT_CONTEXT.len() + 1 + serial.len() + 32);
    m.extend_from_slice(CERT_CONTEXT);
    m.push(serial.len() as u8);
    m.extend_from_slice(serial);
    m.extend_from_slice(public_key);
    Ok(m)
}

/// A watch's certificate: the authority's signature over the watch's serial and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchCertificate {
    /// The watch's serial number, as its Serial Number String reads.
    pub serial: String,
    /// The watch's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The authority's Ed25519 signature.
    pub signature: [u8; 64],
}

impl WatchCertificate {
    /// The bytes the Watch Certificate characteristic holds: version (1), serial length,
    /// serial (UTF-8), public key (32), signature (64).
    pub fn encode(&self) -> Result<Vec<u8>, ProofError> {
        let serial = serial_bytes(&self.serial)?;
        let mut out = Vec::with_capacity(2 + serial.len() + 96);
        out.push(CERT_VERSION);
        out.push(serial.len() as u8);
        out.extend_from_slice(serial);
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Reads [`WatchCertificate::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<WatchCertificate, ProofError> {
        let (&version, rest) = bytes.split_first().ok_or(ProofError::Malformed("empty"))?;
        if version != CERT_VERSION {
            return Err(ProofError::Malformed("unknown version"));
        }
        let (&len, rest) = rest
            .split_first()
            .ok_or(ProofError::Malformed("truncated"))?;
        let len = usize::from(len);
        if len == 0 || len > MAX_SERIAL_LEN {
            return Err(ProofError::Malformed("serial number length"));
        }
        if rest.len() != len + 96 {
            return Err(ProofError::Malformed("length"));
        }
        let (serial, rest) = rest.split_at(len);
        let serial = std::str::from_utf8(serial)
            .map_err(|_| ProofError::Malformed("serial number is not UTF-8"))?;
        let (public_key, signature) = rest.split_at(32);
        Ok(WatchCertificate {
            serial: serial.to_owned(),
            public_key: public_key
                .try_into()
                .map_err(|_| ProofError::Malformed("public key"))?,
            signature: signature
                .try_into()
                .map_err(|_| ProofError::Malformed("signature"))?,
        })
    }

    /// Checks the certificate against the trusted authorities' public keys.
    pub fn verify(&self, authorities: &[[u8; 32]]) -> Result<(), ProofError> {
        let message = cert_message(&self.serial, &self.public_key)?;
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        let certified = authorities.iter().any(|ca| {
            VerifyingKey::from_bytes(ca)
                .is_ok_and(|key| key.verify_strict(&message, &signature).is_ok())
        });
        if certified {
            Ok(())
        } else {
            Err(ProofError::NotCertified)
        }
    }

    /// Checks that this certified watch signed `steps` for `date` with `proof`, and that the
    /// record names this watch (`serial`). Check [`WatchCertificate::verify`] first.
    pub fn verify_day(
        &self,
        serial: &str,
        date: NaiveDate,
        steps: u32,
        proof: &DayProof,
    ) -> Result<(), ProofError> {
        if serial != self.serial {
            return Err(ProofError::OtherWatch {
                certified: self.serial.clone(),
                claimed: serial.to_owned(),
            });
        }
        let message = day_message(serial, date, steps, proof.counter, proof.signed_at)?;
        let key =
            VerifyingKey::from_bytes(&self.public_key).map_err(|_| ProofError::BadSignature)?;
        key.verify_strict(
            &message,
            &ed25519_dalek::Signature::from_bytes(&proof.signature),
        )
        .map_err(|_| ProofError::BadSignature)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lowercase or uppercase hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

mod hex64 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        super::unhex(&text)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("a signature is 128 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_certified_watch_signs_a_day_and_nothing_else_passes() {
        let ca = WatchCa::demo();
        let watch = WatchKey::from_seed([7; 32]);
        let cert = ca.certify("PW-0042", watch.public_key()).unwrap();
        let cert = WatchCertificate::decode(&cert.encode().unwrap()).unwrap();
        assert_eq!(cert.verify(&[ca.public_key()]), Ok(()));
        let proof = watch
            .sign_day("PW-0042", d("2025-12-02"), 8_100, 41, 1_764_687_600)
            .unwrap();
        assert_eq!(
            cert.verify_day("PW-0042", d("2025-12-02"), 8_100, &proof),
            Ok(())
        );
        // Each fact is covered: steps, day, counter, time, serial.
        assert_eq!(
            cert.verify_day("PW-0042", d("2025-12-02"), 18_100, &proof),
            Err(ProofError::BadSignature)
        );
        assert_eq!(
            cert.verify_day("PW-0042", d("2025-12-01"), 8_100, &proof),
            Err(ProofError::BadSignature)
        );
        for altered in [
            DayProof {
                counter: 40,
                ..proof
            },
            DayProof {
                signed_at: proof.signed_at - 86_400,
                ..proof
            },
        ] {
            assert_eq!(
                cert.verify_day("PW-0042", d("2025-12-02"), 8_100, &altered),
                Err(ProofError::BadSignature)
            );
        }
        assert!(matches!(
            cert.verify_day("PW-0043", d("2025-12-02"), 8_100, &proof),
            Err(ProofError::OtherWatch { .. })
        ));
        // A watch the authority never certified, or a certificate from another authority.
        let forged = WatchCa::from_seed([9; 32])
            .certify("PW-0042", watch.public_key())
            .unwrap();
        assert_eq!(
            forged.verify(&[ca.public_key()]),
            Err(ProofError::NotCertified)
        );
        let mut swapped = cert.clone();
        swapped.public_key = WatchKey::from_seed([8; 32]).public_key();
        assert_eq!(
            swapped.verify(&[ca.public_key()]),
            Err(ProofError::NotCertified)
        );
    }

    /// The worked example of `docs/watch-gatt.md` ("Signed steps"), byte for byte.
    #[test]
    fn the_documented_example() {
        let date = d("2025-12-01");
        let key = WatchKey::from_seed([7; 32]);
        let ca = WatchCa::demo();
        assert_eq!(
            hex(&ca.public_key()),
            "eb7f029e5fcf196c8f7781373642f78c8393593d4cf0abac3d2418dd671de9b1"
        );
        let cert = ca.certify("PW-0042", key.public_key()).unwrap();
        assert_eq!(
            hex(&cert.encode().unwrap()),
            "010750572d30303432ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d2\
             2c6c2224ced4f211465e5ff83969924db751a17ea1c7793f6b6fee32d4c47f37ea9c08ff3bd9e7b0\
             6fc969634e484be26b526e878511b2416ab240cb6d7ae8a005"
        );
        assert_eq!(
            hex(&day_message("PW-0042", date, 8500, 41, 1_764_601_199).unwrap()),
            "50414c50414c2d57415443482d4441592d310750572d30303432fa2434210000290000006fad2d69"
        );
        let proof = key
            .sign_day("PW-0042", date, 8500, 41, 1_764_601_199)
            .unwrap();
        let n = crate::HistoryNotification {
            first_seq: 1002,
            starts_stream: true,
            ends_stream: true,
            records: vec![crate::HistoryRecord::DaySteps {
                date,
                steps: 8500,
                proof: Some(proof),
            }],
        };
        let bytes = n.encode().unwrap();
        assert_eq!(
            hex(&bytes),
            "ea030000c001fa24b442290000006fad2d6926164437fefbf07a177baf2c67140754ee8c734c4302\
             a65941adf2980148ca7f30f9065007a028f99411ada5b3c320f7d3f2dd10b5088c450f30d5152d54\
             f006c1dd20"
        );
        assert_eq!(crate::HistoryNotification::decode(&bytes).unwrap(), n);
    }

    #[test]
    fn certificates_that_do_not_read_are_refused() {
        let cert = WatchCa::demo()
            .certify("PW-1", WatchKey::from_seed([1; 32]).public_key())
            .unwrap()
            .encode()
            .unwrap();
        assert_eq!(cert.len(), 2 + 4 + 96);
        for bad in [
            &[][..],
            &cert[..1],
            &cert[..cert.len() - 1],
            &[&cert[..], &[0]].concat()[..],
            &[&[2u8][..], &cert[1..]].concat()[..],
        ] {
            assert!(
                matches!(WatchCertificate::decode(bad), Err(ProofError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(WatchCa::demo()
            .certify("", WatchKey::from_seed([1; 32]).public_key())
            .is_err());
    }

    #[test]
    fn a_proof_reads_back_from_json() {
        let proof = WatchKey::from_seed([3; 32])
            .sign_day("PW-1", d("2025-12-02"), 1, 2, 3)
            .unwrap();
        let text = serde_json::to_string(&proof).unwrap();
        assert_eq!(serde_json::from_str::<DayProof>(&text).unwrap(), proof);
        assert!(serde_json::from_str::<DayProof>(
            r#"{"counter":1,"signed_at":2,"signature":"00"}"#
        )
        .is_err());
    }
}
