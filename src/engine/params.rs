//! Engine: the run values SQL views reach as typed `$name` parameters.

use chrono::{Datelike, Days, Months, NaiveDate, TimeZone};
use chrono_tz::Tz;
use datafusion::common::ScalarValue;

use crate::config::Pipeline;
use crate::error::{KpipeError, Result};

/// The values one run gives its views, besides the pipeline's own `params`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunValues {
    /// The date the extracts describe, in the business time zone.
    pub as_of: NaiveDate,
    /// The first instant not known yet: the start of `as_of + 1 day`, in business time.
    pub cutoff_micros: i64,
    /// `as_of`'s month, `YYYY-MM`.
    pub period: String,
    /// The first day of the earliest month of the lookback window.
    pub window_start: NaiveDate,
    /// `window_start`'s first instant, in business time.
    pub window_start_micros: i64,
    pub lookback_months: u32,
    pub timezone: Tz,
    pub currency: String,
    /// A locked month (before the window) recomputed on purpose: `kpipe run --restate`.
    pub restate: Option<NaiveDate>,
}

impl RunValues {
    pub fn try_new(pipeline: &Pipeline, as_of: NaiveDate) -> Result<Self> {
        let tz = pipeline.settings.timezone;
        let next_day = as_of
            .checked_add_days(Days::new(1))
            .ok_or_else(|| KpipeError::Internal(format!("{as_of} has no next day")))?;
        let lookback = pipeline.settings.lookback_months;
        let month_start = as_of.with_day(1).expect("every month has a first day");
        let window_start = month_start
            .checked_sub_months(Months::new(lookback - 1))
            .ok_or_else(|| KpipeError::Internal(format!("{as_of} minus {lookback} months")))?;
        Ok(Self {
            as_of,
            cutoff_micros: start_of_day(tz, next_day)?,
            period: as_of.format("%Y-%m").to_string(),
            window_start,
            window_start_micros: start_of_day(tz, window_start)?,
            lookback_months: lookback,
            timezone: tz,
            currency: pipeline.settings.currency.clone(),
            restate: None,
        })
    }

    /// Recomputes `month` too, a month before the window that runs no longer recompute
    /// (bonus.md: an explicit restatement). Only a locked month can be restated: the
    /// window's months are recomputed by every run anyway.
    pub fn restating(mut self, month: &str) -> Result<Self> {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| KpipeError::Usage(format!("--restate `{month}` is not YYYY-MM")))?;
        if first >= self.window_start {
            return Err(KpipeError::Usage(format!(
                "--restate {month}: only a locked month can be restated, and {month} is not \
                 before the lookback window (it starts {}); every run recomputes it",
                self.window_start.format("%Y-%m")
            )));
        }
        self.restate = Some(first);
        Ok(self)
    }

    /// The first days of the months this run recomputes, oldest first: the restated
    /// month, if any, then the lookback window.
    pub fn months(&self) -> Vec<NaiveDate> {
        self.restate
            .into_iter()
            .chain(
                (0..self.lookback_months)
                    .filter_map(|i| self.window_start.checked_add_months(Months::new(i))),
            )
            .collect()
    }

    /// The months this run recomputes (`months`), `YYYY-MM`.
    pub fn periods(&self) -> Vec<String> {
        self.months()
            .into_iter()
            .map(|d| d.format("%Y-%m").to_string())
            .collect()
    }

    /// The value of built-in parameter `name`.
    pub fn builtin(&self, name: &str) -> Option<ScalarValue> {
        let tz = Some(self.timezone.name().into());
        Some(match name {
            "as_of" => ScalarValue::Date32(Some(days_since_epoch(self.as_of))),
            "cutoff" => ScalarValue::TimestampMicrosecond(Some(self.cutoff_micros), tz),
            "period" => ScalarValue::Utf8(Some(self.period.clone())),
            "window_start" => ScalarValue::Date32(Some(days_since_epoch(self.window_start))),
            "window_start_at" => {
                ScalarValue::TimestampMicrosecond(Some(self.window_start_micros), tz)
            }
            "lookback_months" => ScalarValue::Int64(Some(i64::from(self.lookback_months))),
            "timezone" => ScalarValue::Utf8(Some(self.timezone.name().to_string())),
            "currency" => ScalarValue::Utf8(Some(self.currency.clone())),
            _ => return None,
        })
    }

    /// Built-in parameters first, then the pipeline's `params`.
    pub fn lookup(&self, pipeline: &Pipeline, name: &str) -> Option<ScalarValue> {
        self.builtin(name).or_else(|| {
            pipeline
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
    }
}

/// Yesterday in `tz`: the default `as_of` of a nightly run.
pub fn yesterday(tz: Tz) -> NaiveDate {
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    today.pred_opt().expect("today has a yesterday")
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    (date - epoch).num_days() as i32
}

/// The first instant of `date` in `tz`, in microseconds since the epoch. A day that
/// starts in a DST gap starts at the first instant that exists.
pub(crate) fn start_of_day(tz: Tz, date: NaiveDate) -> Result<i64> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    let instant = tz
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| KpipeError::Internal(format!("{date} has no start in {tz}")))?;
    Ok(instant.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_the_next_local_midnight() {
        // 2026-07-01T00:00 in Shanghai (UTC+8) is 2026-06-30T16:00Z.
        let micros = start_of_day(
            chrono_tz::Asia::Shanghai,
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
        )
        .unwrap();
        let utc = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-06-30T16:00:00+00:00");
        assert_eq!(
            days_since_epoch(NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()),
            20_634
        );
    }

    #[test]
    fn a_day_starting_in_a_dst_gap_starts_when_the_clock_resumes() {
        // Clocks in Santiago jumped from 00:00 to 01:00 on 2024-09-08.
        let tz = chrono_tz::America::Santiago;
        let micros = start_of_day(tz, NaiveDate::from_ymd_opt(2024, 9, 8).unwrap()).unwrap();
        let utc = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        assert_eq!(utc.to_rfc3339(), "2024-09-08T04:00:00+00:00");
    }
}
