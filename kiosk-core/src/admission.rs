//! Who is admitted on which day, and the site's quota of places for the day.
//!
//! The central server publishes the day's schedule (for example birth years odd and even on
//! alternate days, or age bands per day) and leases each site a quota of places ahead of time,
//! so a kiosk confirms a registration on the spot, even offline, without racing other kiosks
//! for a central counter at 10:00.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::age_on;

/// Who may register on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum DayRule {
    /// Everyone eligible.
    Open,
    /// Only people born in an odd year.
    OddBirthYears,
    /// Only people born in an even year.
    EvenBirthYears,
    /// Only people whose age on the day is within `min_age..=max_age`.
    AgeBand { min_age: u32, max_age: u32 },
    /// No registration that day.
    Closed,
}

impl DayRule {
    /// Whether a person born on `birth_date` is admitted on `day` under this rule.
    pub fn admits(self, birth_date: NaiveDate, day: NaiveDate) -> bool {
        match self {
            DayRule::Open => true,
            DayRule::OddBirthYears => birth_date.year().rem_euclid(2) == 1,
            DayRule::EvenBirthYears => birth_date.year().rem_euclid(2) == 0,
            DayRule::AgeBand { min_age, max_age } => {
                (min_age..=max_age).contains(&age_on(birth_date, day))
            }
            DayRule::Closed => false,
        }
    }
}

/// The admission schedule the server published: a rule per day. Days not listed are closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionSchedule {
    pub days: BTreeMap<NaiveDate, DayRule>,
}

impl AdmissionSchedule {
    pub fn rule_on(&self, day: NaiveDate) -> DayRule {
        self.days.get(&day).copied().unwrap_or(DayRule::Closed)
    }

    /// The first day after `today` on which a person born on `birth_date` is admitted, if
    /// the schedule has one.
    pub fn next_day_for(&self, birth_date: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
        let from = today.checked_add_days(Days::new(1))?;
        self.days
            .range(from..)
            .find(|(day, rule)| rule.admits(birth_date, **day))
            .map(|(day, _)| *day)
    }
}

/// Places the server leased to this site for one day. `used` counts confirmations made here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLease {
    pub lease_id: String,
    pub site: String,
    pub day: NaiveDate,
    pub places: u32,
    pub used: u32,
}

impl QuotaLease {
    pub fn remaining(&self) -> u32 {
        self.places.saturating_sub(self.used)
    }
}

/// A place confirmed inside the lease: the `place`-th of the day at this site (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Admission {
    pub place: u32,
}

/// Why a person cannot register today, and when to come back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotAdmitted {
    #[error("not this person's day; next day {next:?}")]
    NotYourDay { next: Option<NaiveDate> },
    #[error("today's places at this site are used up; next day {next:?}")]
    QuotaUsedUp { next: Option<NaiveDate> },
    #[error("this site holds no places for {day}")]
    NoLease { day: NaiveDate },
}

impl NotAdmitted {
    pub fn code(&self) -> &'static str {
        match self {
            NotAdmitted::NotYourDay { .. } => "not_today",
            NotAdmitted::QuotaUsedUp { .. } => "quota_used_up",
            NotAdmitted::NoLease { .. } => "no_quota",
        }
    }

    /// The day to come back, if there is one; a numbered ticket can be given for it.
    pub fn come_back_on(&self) -> Option<NaiveDate> {
        match self {
            NotAdmitted::NotYourDay { next } | NotAdmitted::QuotaUsedUp { next } => *next,
            NotAdmitted::NoLease { .. } => None,
        }
    }

    pub fn ko(&self) -> String {
        let when = |next: &Option<NaiveDate>| match next {
            Some(d) => format!(
                "{}년 {}월 {}일({})에 다시 오세요. 번호표를 받으실 수 있습니다.",
                d.year(),
                d.month(),
                d.day(),
                weekday_ko(*d)
            ),
            None => "가입 일정이 정해지면 주민센터에서 알려 드립니다.".to_owned(),
        };
        match self {
            NotAdmitted::NotYourDay { next } => {
                format!(
                    "오늘은 해당 출생연도(나이)의 가입일이 아닙니다. {}",
                    when(next)
                )
            }
            NotAdmitted::QuotaUsedUp { next } => {
                format!("오늘 이곳의 가입 인원이 모두 찼습니다. {}", when(next))
            }
            NotAdmitted::NoLease { .. } => {
                "이 단말기에 오늘 가입 인원이 배정되지 않았습니다. 직원에게 문의하세요.".to_owned()
            }
        }
    }

    pub fn en(&self) -> String {
        let when = |next: &Option<NaiveDate>| match next {
            Some(d) => format!(
                "Please come back on {} ({}); you can take a numbered ticket for that day.",
                d.format("%Y-%m-%d"),
                d.format("%A")
            ),
            None => "The community center will tell you when sign-up opens again.".to_owned(),
        };
        match self {
            NotAdmitted::NotYourDay { next } => {
                format!(
                    "Today is not the sign-up day for your birth year (age). {}",
                    when(next)
                )
            }
            NotAdmitted::QuotaUsedUp { next } => {
                format!("Today's places at this site are all taken. {}", when(next))
            }
            NotAdmitted::NoLease { .. } => {
                "This kiosk holds no places for today. Please ask the clerk.".to_owned()
            }
        }
    }
}

fn weekday_ko(d: NaiveDate) -> &'static str {
    ["월", "화", "수", "목", "금", "토", "일"][d.weekday().num_days_from_monday() as usize]
}

/// Decides whether a person born on `birth_date` is admitted on `today` and, if so, takes the
/// next place of the lease. The lease is changed only when the person is admitted.
pub fn admit(
    schedule: &AdmissionSchedule,
    lease: Option<&mut QuotaLease>,
    birth_date: NaiveDate,
    today: NaiveDate,
) -> Result<Admission, NotAdmitted> {
    if !schedule.rule_on(today).admits(birth_date, today) {
        return Err(NotAdmitted::NotYourDay {
            next: schedule.next_day_for(birth_date, today),
        });
    }
    let lease = match lease {
        Some(l) if l.day == today => l,
        _ => return Err(NotAdmitted::NoLease { day: today }),
    };
    if lease.remaining() == 0 {
        return Err(NotAdmitted::QuotaUsedUp {
            next: schedule.next_day_for(birth_date, today),
        });
    }
    lease.used += 1;
    Ok(Admission { place: lease.used })
}

/// Admission as the kiosk applies it: with no schedule cached (the kiosk never pulled one),
/// everyone eligible is admitted without a place (`Ok(None)`), as before schedules existed;
/// with one, [`admit`] decides and takes a place of the lease.
pub fn admit_cached(
    schedule: Option<&AdmissionSchedule>,
    lease: Option<&mut QuotaLease>,
    birth_date: NaiveDate,
    today: NaiveDate,
) -> Result<Option<Admission>, NotAdmitted> {
    match schedule {
        None => Ok(None),
        Some(s) => admit(s, lease, birth_date, today).map(Some),
    }
}

/// A numbered ticket for a later sign-up day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub day: NaiveDate,
    pub number: u32,
}

impl Ticket {
    pub fn ko(&self) -> String {
        format!(
            "번호표 {}번: {}년 {}월 {}일({}) 이곳에서 가입하실 수 있습니다. 번호표와 신분증을 가져오세요.",
            self.number,
            self.day.year(),
            self.day.month(),
            self.day.day(),
            weekday_ko(self.day)
        )
    }

    pub fn en(&self) -> String {
        format!(
            "Ticket no. {}: you can sign up here on {} ({}). Bring this ticket and your ID.",
            self.number,
            self.day.format("%Y-%m-%d"),
            self.day.format("%A")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// 2025-12-01 (Mon) odd years, 12-02 even, 12-03 ages 70+, 12-04 closed, 12-05 open.
    fn schedule() -> AdmissionSchedule {
        AdmissionSchedule {
            days: BTreeMap::from([
                (d("2025-12-01"), DayRule::OddBirthYears),
                (d("2025-12-02"), DayRule::EvenBirthYears),
                (
                    d("2025-12-03"),
                    DayRule::AgeBand {
                        min_age: 70,
                        max_age: 150,
                    },
                ),
                (d("2025-12-04"), DayRule::Closed),
                (d("2025-12-05"), DayRule::Open),
            ]),
        }
    }

    fn lease(day: &str, places: u32) -> QuotaLease {
        QuotaLease {
            lease_id: "L-1".into(),
            site: "jongno".into(),
            day: d(day),
            places,
            used: 0,
        }
    }

    /// One row: birth date, today, places left, expected place or (code, come-back day).
    fn check(birth: &str, today: &str, places: u32, expect: Result<u32, (&str, Option<&str>)>) {
        let mut l = lease(today, places);
        let got = admit(&schedule(), Some(&mut l), d(birth), d(today));
        match (got, expect) {
            (Ok(a), Ok(place)) => {
                assert_eq!(a.place, place, "{birth} on {today}");
                assert_eq!(l.used, 1);
            }
            (Err(e), Err((code, next))) => {
                assert_eq!(e.code(), code, "{birth} on {today}");
                assert_eq!(e.come_back_on(), next.map(d), "{birth} on {today}");
                assert_eq!(l.used, 0, "a refusal takes no place");
            }
            (got, expect) => panic!("{birth} on {today}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn admission_table() {
        check("1951-05-05", "2025-12-01", 10, Ok(1));
        check(
            "1950-05-05",
            "2025-12-01",
            10,
            Err(("not_today", Some("2025-12-02"))),
        );
        check("1950-05-05", "2025-12-02", 10, Ok(1));
        // 12-03 is for 70 and over: a 68-year-old (even year) is sent on to the open day.
        check(
            "1956-12-04",
            "2025-12-03",
            10,
            Err(("not_today", Some("2025-12-05"))),
        );
        check("1955-12-03", "2025-12-03", 10, Ok(1)); // 70th birthday that very day
        check(
            "1951-05-05",
            "2025-12-04",
            10,
            Err(("not_today", Some("2025-12-05"))),
        );
        check("1951-05-05", "2025-12-05", 0, Err(("quota_used_up", None)));
        check(
            "1951-05-05",
            "2025-12-01",
            0,
            Err(("quota_used_up", Some("2025-12-03"))),
        );
        check("2000-01-01", "2025-12-06", 10, Err(("not_today", None)));
    }

    #[test]
    fn places_are_taken_one_by_one_and_never_beyond_the_lease() {
        let mut l = lease("2025-12-05", 3);
        let s = schedule();
        let places: Vec<_> = (0..5)
            .map(|_| admit(&s, Some(&mut l), d("1950-01-01"), d("2025-12-05")).map(|a| a.place))
            .collect();
        assert_eq!(places[..3], [Ok(1), Ok(2), Ok(3)]);
        assert!(places[3..]
            .iter()
            .all(|p| matches!(p, Err(NotAdmitted::QuotaUsedUp { .. }))));
        assert_eq!(l.used, 3);
    }

    #[test]
    fn a_lease_for_another_day_or_none_is_no_lease() {
        let s = schedule();
        let mut yesterday = lease("2025-12-04", 10);
        let e = admit(&s, Some(&mut yesterday), d("1950-01-01"), d("2025-12-05")).unwrap_err();
        assert_eq!(e.code(), "no_quota");
        assert_eq!(yesterday.used, 0);
        let e = admit(&s, None, d("1950-01-01"), d("2025-12-05")).unwrap_err();
        assert_eq!(e.code(), "no_quota");
    }

    #[test]
    fn without_a_cached_schedule_everyone_eligible_is_admitted_without_a_place() {
        let mut l = lease("2025-12-06", 0);
        assert_eq!(
            admit_cached(None, Some(&mut l), d("2000-01-01"), d("2025-12-06")),
            Ok(None)
        );
        assert_eq!(l.used, 0);
        let s = schedule();
        let mut l = lease("2025-12-05", 2);
        assert_eq!(
            admit_cached(Some(&s), Some(&mut l), d("1950-01-01"), d("2025-12-05")),
            Ok(Some(Admission { place: 1 }))
        );
        let e = admit_cached(Some(&s), None, d("1950-01-01"), d("2025-12-05")).unwrap_err();
        assert_eq!(e.code(), "no_quota");
    }

    #[test]
    fn a_ticket_names_its_number_and_day() {
        let t = Ticket {
            day: d("2025-12-05"),
            number: 3,
        };
        assert_eq!(
            t.ko(),
            "번호표 3번: 2025년 12월 5일(금) 이곳에서 가입하실 수 있습니다. 번호표와 신분증을 가져오세요."
        );
        assert_eq!(
            t.en(),
            "Ticket no. 3: you can sign up here on 2025-12-05 (Friday). Bring this ticket and your ID."
        );
    }

    #[test]
    fn come_back_messages_name_the_day_in_both_languages() {
        let e = NotAdmitted::NotYourDay {
            next: Some(d("2025-12-02")),
        };
        assert_eq!(
            e.ko(),
            "오늘은 해당 출생연도(나이)의 가입일이 아닙니다. 2025년 12월 2일(화)에 다시 오세요. 번호표를 받으실 수 있습니다."
        );
        assert_eq!(
            e.en(),
            "Today is not the sign-up day for your birth year (age). Please come back on 2025-12-02 (Tuesday); you can take a numbered ticket for that day."
        );
    }
}
