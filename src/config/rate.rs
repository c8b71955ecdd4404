//! Rates as written in configuration (`20/min`), read by the settings and
//! enforced by `ratelimit`.

use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// `count` requests per `per`, as written in config: `20/min`, `5/s`, `100/hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("\"{text}\" is not a rate like 20/min, 5/s or 100/hour");
        let (count, unit) = text.trim().split_once('/').ok_or_else(malformed)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| malformed())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(malformed()),
        };
        Ok(Self { count, per })
    }
}
