//! Business hours per inbox: opening ranges per weekday, a fixed UTC offset, and holidays.
//!
//! The zone is a fixed offset in minutes (Vietnam is UTC+7 all year, no daylight saving), which keeps
//! the core free of a time-zone database. An inbox in a zone with daylight saving has to update its
//! offset twice a year; full IANA zones are a later improvement.

use crate::time::Timestamp;
use std::fmt;

const MINUTES_PER_DAY: u16 = 24 * 60;
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;

/// Weekday keys in the API, Monday first (index 0).
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`, checking the day exists in that month.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year: i32 = s.get(0..4)?.parse().ok()?;
        let month: u8 = s.get(5..7)?.parse().ok()?;
        let day: u8 = s.get(8..10)?.parse().ok()?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    pub fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// One opening range within a day, in minutes after local midnight: `[start, end)`.
/// `end` may be 1440 ("24:00") so a range can run to the end of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u16,
    pub end: u16,
}

impl Range {
    /// Parses `HH:MM` into minutes after midnight; `24:00` is allowed (end of day).
    pub fn parse_time(s: &str) -> Option<u16> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return None;
        }
        Some(h * 60 + m)
    }

    pub fn format_time(minutes: u16) -> String {
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    pub fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

/// When an inbox is staffed, and what happens outside those hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// Local time = UTC + this many minutes (e.g. 420 for Vietnam).
    pub utc_offset_minutes: i32,
    /// Opening ranges per weekday, Monday first; sorted and non-overlapping. An empty day is closed.
    pub days: [Vec<Range>; 7],
    /// Local dates on which the inbox is closed all day.
    pub holidays: Vec<Date>,
    /// Outside hours, new conversations wait in the pool instead of being routed.
    pub pause_routing: bool,
    /// Outside hours, a customer whose conversation enters the pool gets this reply.
    pub auto_reply: Option<String>,
}

/// A moment as the inbox's clock on the wall shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub date: Date,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: usize,
    /// Minutes after local midnight.
    pub minute: u16,
}

/// Converts `now` to local wall-clock time at a fixed UTC offset.
pub fn local_time(now: Timestamp, utc_offset_minutes: i32) -> LocalTime {
    let local_ms = now.millis() + i64::from(utc_offset_minutes) * MS_PER_MINUTE;
    let days = local_ms.div_euclid(MS_PER_DAY);
    let minute = (local_ms.rem_euclid(MS_PER_DAY) / MS_PER_MINUTE) as u16;
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    let weekday = (days + 3).rem_euclid(7) as usize;
    LocalTime {
        date: Date::from_days_since_epoch(days),
        weekday,
        minute,
    }
}

/// The instant a local date and time (minutes after midnight) happens at a fixed UTC offset.
pub fn timestamp_at(date: Date, minute: u16, utc_offset_minutes: i32) -> Timestamp {
    Timestamp(
        date.days_since_epoch() * MS_PER_DAY + i64::from(minute) * MS_PER_MINUTE
            - i64::from(utc_offset_minutes) * MS_PER_MINUTE,
    )
}

impl BusinessHours {
    /// Open at `now`: not a holiday, and inside one of the day's ranges.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let t = local_time(now, self.utc_offset_minutes);
        if self.holidays.contains(&t.date) {
            return false;
        }
        self.days[t.weekday].iter().any(|r| r.contains(t.minute))
    }

    /// The first moment from `now` on when the inbox is open: `now` itself when open, else the
    /// start of its next range (holidays skipped), looking up to a year ahead; `None`: never open.
    pub fn next_open(&self, now: Timestamp) -> Option<Timestamp> {
        let today = local_time(now, self.utc_offset_minutes);
        let first_day = today.date.days_since_epoch();
        for offset in 0..=366 {
            let date = Date::from_days_since_epoch(first_day + offset);
            if self.holidays.contains(&date) {
                continue;
            }
            let weekday = (today.weekday + offset as usize) % 7;
            for r in &self.days[weekday] {
                if offset == 0 && r.contains(today.minute) {
                    return Some(now);
                }
                let start = timestamp_at(date, r.start, self.utc_offset_minutes);
                if start > now {
                    return Some(start);
                }
            }
        }
        None
    }

    /// Checks ranges (start < end ≤ 24:00, sorted, non-overlapping) and the offset. Returns the
    /// offending field and why.
    pub fn check(&self) -> Result<(), (String, &'static str)> {
        if !(-12 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return Err((
                "business_hours.utc_offset_minutes".into(),
                "must be between -720 and 840",
            ));
        }
        for (i, ranges) in self.days.iter().enumerate() {
            let field = || format!("business_hours.days.{}", WEEKDAYS[i]);
            for r in ranges {
                if r.start >= r.end || r.end > MINUTES_PER_DAY {
                    return Err((field(), "each range must start before it ends"));
                }
            }
            if ranges.windows(2).any(|w| w[0].end > w[1].start) {
                return Err((field(), "ranges must be in order and must not overlap"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VN: i32 = 7 * 60;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap_or(Date {
            year: 0,
            month: 0,
            day: 0,
        })
    }

    fn hm(s: &str) -> u16 {
        Range::parse_time(s).unwrap_or(u16::MAX)
    }

    /// Mon–Fri 08:00–12:00 and 13:30–17:30, Saturday morning, Sunday closed; 2 September is a holiday.
    fn shop() -> BusinessHours {
        let weekday = vec![
            Range {
                start: hm("08:00"),
                end: hm("12:00"),
            },
            Range {
                start: hm("13:30"),
                end: hm("17:30"),
            },
        ];
        BusinessHours {
            utc_offset_minutes: VN,
            days: [
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday,
                vec![Range {
                    start: hm("08:00"),
                    end: hm("12:00"),
                }],
                vec![],
            ],
            holidays: vec![d("2026-09-02")],
            pause_routing: true,
            auto_reply: None,
        }
    }

    #[test]
    fn next_open_skips_breaks_nights_sundays_and_holidays() {
        let h = shop();
        let at = |date: &str, time: &str| timestamp_at(d(date), hm(time), VN);
        for ((date, time), want) in [
            // Open now: now.
            (("2026-09-21", "09:00"), Some(("2026-09-21", "09:00"))),
            // Lunch break: the afternoon range.
            (("2026-09-21", "12:00"), Some(("2026-09-21", "13:30"))),
            // Early morning: today's opening.
            (("2026-09-21", "06:59"), Some(("2026-09-21", "08:00"))),
            // Closing time exactly: tomorrow.
            (("2026-09-21", "17:30"), Some(("2026-09-22", "08:00"))),
            // Saturday afternoon, Sunday closed: Monday.
            (("2026-09-26", "12:00"), Some(("2026-09-28", "08:00"))),
            // The evening before the 2 September holiday: the 3rd.
            (("2026-09-01", "20:00"), Some(("2026-09-03", "08:00"))),
        ] {
            assert_eq!(
                h.next_open(at(date, time)),
                want.map(|(d, t)| at(d, t)),
                "{date} {time}"
            );
        }
        let never = BusinessHours {
            days: Default::default(),
            ..shop()
        };
        assert_eq!(never.next_open(at("2026-09-21", "09:00")), None);
    }

    #[test]
    fn dates_round_trip_and_weekdays_are_right() {
        assert_eq!(d("1970-01-01").days_since_epoch(), 0);
        assert_eq!(d("2000-03-01").days_since_epoch(), 11_017);
        for days in [-800_000, -1, 0, 1, 11_016, 11_017, 20_000, 2_000_000] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
        // 2026-09-21 is a Monday; 2026-09-02 a Wednesday.
        assert_eq!(
            local_time(timestamp_at(d("2026-09-21"), 0, VN), VN).weekday,
            0
        );
        assert_eq!(
            local_time(timestamp_at(d("2026-09-02"), 600, VN), VN).weekday,
            2
        );
        assert_eq!(d("2026-09-21").to_string(), "2026-09-21");
    }

    #[test]
    fn parsing_rejects_impossible_dates_and_times() {
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-9-1",
            "26-09-01",
            "x",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert!(Date::parse("2028-02-29").is_some(), "leap year");
        for bad in ["24:01", "7:00", "08:60", "25:00", "0800", ""] {
            assert_eq!(Range::parse_time(bad), None, "{bad}");
        }
        assert_eq!(Range::parse_time("24:00"), Some(1440));
        assert_eq!(Range::format_time(810), "13:30");
    }

    #[test]
    fn two_ranges_and_a_holiday_at_every_boundary() {
        let bh = shop();
        let at = |date: &str, time: &str| timestamp_at(d(date), hm(time), VN);
        let cases = [
            // Monday 2026-09-21
            ("2026-09-21", "07:59", false, "before opening"),
            ("2026-09-21", "08:00", true, "opening minute"),
            ("2026-09-21", "11:59", true, "last morning minute"),
            (
                "2026-09-21",
                "12:00",
                false,
                "lunch starts: end is exclusive",
            ),
            ("2026-09-21", "13:29", false, "last lunch minute"),
            ("2026-09-21", "13:30", true, "afternoon opens"),
            ("2026-09-21", "17:29", true, "last afternoon minute"),
            ("2026-09-21", "17:30", false, "closed"),
            ("2026-09-26", "09:00", true, "Saturday morning"),
            ("2026-09-26", "14:00", false, "Saturday afternoon"),
            ("2026-09-27", "10:00", false, "Sunday"),
            ("2026-09-02", "10:00", false, "holiday on a Wednesday"),
            ("2026-09-03", "10:00", true, "the day after the holiday"),
            ("2026-09-01", "17:29", true, "the day before the holiday"),
        ];
        for (date, time, open, why) in cases {
            assert_eq!(bh.is_open(at(date, time)), open, "{date} {time}: {why}");
        }
        // One millisecond either side of the boundary (UTC instant, local offset applied).
        let opening = at("2026-09-21", "08:00");
        assert!(!bh.is_open(opening.plus_millis(-1)));
        assert!(bh.is_open(opening));
        // The offset matters: 08:00 in Vietnam is 01:00 UTC.
        assert_eq!(local_time(opening, 0).minute, 60);
    }

    #[test]
    fn check_rejects_bad_ranges() {
        let mut bh = shop();
        assert_eq!(bh.check(), Ok(()));
        bh.days[2] = vec![
            Range {
                start: 600,
                end: 700,
            },
            Range {
                start: 650,
                end: 800,
            },
        ];
        assert_eq!(
            bh.check().map_err(|e| e.0),
            Err("business_hours.days.wed".to_owned())
        );
        bh.days[2] = vec![Range {
            start: 700,
            end: 700,
        }];
        assert!(bh.check().is_err());
        bh.days[2] = vec![];
        bh.utc_offset_minutes = 15 * 60;
        assert!(bh.check().is_err());
    }
}
