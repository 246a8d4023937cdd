//! The clock behind `strftime_now(fmt)`: a plain calendar time and Python/glibc `strftime`.
//!
//! transformers formats `datetime.now()` (naive local time). ondo has no time-zone database, so an
//! unfixed clock reads UTC; tests and reproducible prompts fix it with [`DateTime`].

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar date and wall-clock time (no time zone), as `strftime_now` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// The UTC calendar time of a unix timestamp (seconds).
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// The current time in UTC.
    pub fn now_utc() -> DateTime {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        DateTime::from_unix(secs)
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]][Z]` (a space may replace the `T`).
    /// Returns `None` when the text is not such a time or names an impossible date.
    pub fn parse(text: &str) -> Option<DateTime> {
        let text = text.trim().trim_end_matches('Z');
        let (date, time) = match text.find(['T', ' ']) {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut d = date.splitn(3, '-');
        let year = d.next()?.parse().ok()?;
        let month = d.next()?.parse().ok()?;
        let day = d.next()?.parse().ok()?;
        let time = time.split('.').next().unwrap_or("");
        let mut t = time.split(':').filter(|s| !s.is_empty());
        let hour = t.next().map_or(Some(0), |s| s.parse().ok())?;
        let minute = t.next().map_or(Some(0), |s| s.parse().ok())?;
        let second = t.next().map_or(Some(0), |s| s.parse().ok())?;
        let dt = DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        dt.is_valid().then_some(dt)
    }

    /// Seconds since 1970-01-01T00:00:00 of this time read as UTC.
    pub fn to_unix(&self) -> i64 {
        self.days() * 86_400 + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61
    }

    /// Days since 1970-01-01.
    fn days(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// 0 = Sunday .. 6 = Saturday.
    fn weekday(&self) -> u32 {
        (self.days() + 4).rem_euclid(7) as u32
    }

    /// 1-based day of the year.
    fn yday(&self) -> u32 {
        (self.days() - days_from_civil(self.year, 1, 1) + 1) as u32
    }

    /// Formats like Python's `datetime.strftime` on glibc. Unknown directives are kept as written.
    pub fn strftime(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let no_pad = chars.peek() == Some(&'-');
            if no_pad {
                chars.next();
            }
            match chars.next() {
                Some(spec) => self.directive(&mut out, spec, no_pad),
                None => out.push('%'),
            }
        }
        out
    }

    fn directive(&self, out: &mut String, spec: char, no_pad: bool) {
        let num = |out: &mut String, v: i64, width: usize| {
            let _ = if no_pad {
                write!(out, "{v}")
            } else {
                write!(out, "{v:0width$}")
            };
        };
        let month_name = MONTHS[(self.month - 1) as usize];
        let day_name = DAYS[self.weekday() as usize];
        match spec {
            'Y' => num(out, self.year, 4),
            'y' => num(out, self.year.rem_euclid(100), 2),
            'C' => num(out, self.year.div_euclid(100), 2),
            'm' => num(out, self.month.into(), 2),
            'd' => num(out, self.day.into(), 2),
            'e' => {
                let _ = if no_pad {
                    write!(out, "{}", self.day)
                } else {
                    write!(out, "{:2}", self.day)
                };
            }
            'j' => num(out, self.yday().into(), 3),
            'H' => num(out, self.hour.into(), 2),
            'I' => num(out, ((self.hour + 11) % 12 + 1).into(), 2),
            'M' => num(out, self.minute.into(), 2),
            'S' => num(out, self.second.into(), 2),
            'f' => out.push_str("000000"),
            'p' => out.push_str(if self.hour < 12 { "AM" } else { "PM" }),
            'B' => out.push_str(month_name),
            'b' | 'h' => out.push_str(&month_name[..3]),
            'A' => out.push_str(day_name),
            'a' => out.push_str(&day_name[..3]),
            'w' => num(out, self.weekday().into(), 1),
            'u' => num(out, ((self.weekday() + 6) % 7 + 1).into(), 1),
            'z' | 'Z' => {}
            'D' | 'x' => out.push_str(&self.strftime("%m/%d/%y")),
            'F' => out.push_str(&self.strftime("%Y-%m-%d")),
            'T' | 'X' => out.push_str(&self.strftime("%H:%M:%S")),
            'R' => out.push_str(&self.strftime("%H:%M")),
            'c' => out.push_str(&self.strftime("%a %b %e %H:%M:%S %Y")),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            '%' => out.push('%'),
            other => {
                out.push('%');
                if no_pad {
                    out.push('-');
                }
                out.push(other);
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_round_trip_and_weekday() {
        // 2025-07-10T12:00:00Z is a Thursday.
        let t = DateTime::from_unix(1_752_148_800);
        assert_eq!(t, DateTime::parse("2025-07-10T12:00:00.000Z").unwrap());
        assert_eq!(t.to_unix(), 1_752_148_800);
        assert_eq!(t.strftime("%A %a %d %b %Y %B %j"), "Thursday Thu 10 Jul 2025 July 191");
        assert_eq!(t.strftime("%H:%M:%S %I%p %-d/%-m %y %%"), "12:00:00 12PM 10/7 25 %");
        assert_eq!(DateTime::from_unix(0).strftime("%F %T"), "1970-01-01 00:00:00");
        assert_eq!(DateTime::from_unix(-1).strftime("%F %T"), "1969-12-31 23:59:59");
    }

    #[test]
    fn glibc_composites() {
        let t = DateTime::parse("2024-02-05 07:08:09").unwrap();
        assert_eq!(t.strftime("%c"), "Mon Feb  5 07:08:09 2024");
        assert_eq!(t.strftime("%x %X %e"), "02/05/24 07:08:09  5");
        assert_eq!(t.strftime("%Q"), "%Q");
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(DateTime::parse("2023-02-29").is_none());
        assert!(DateTime::parse("2024-02-29").is_some());
        assert!(DateTime::parse("2024-13-01").is_none());
        assert!(DateTime::parse("yesterday").is_none());
        assert!(DateTime::parse("2024-01-01T25:00").is_none());
    }
}
