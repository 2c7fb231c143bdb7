//! Reading how long a 429 asks us to wait from the upstream's headers.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// No upstream gets to pause us for longer than this, whatever its header says.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait from the first of `names` that holds a usable value: a number of seconds, or an HTTP
/// date (a date in the past means "now"). Capped at [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(
    headers: &HeaderMap,
    names: &[&str],
    now: SystemTime,
) -> Option<Duration> {
    names.iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?;
        parse(value.trim(), now).map(|wait| wait.min(MAX_RETRY_AFTER))
    })
}

fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(MAX_RETRY_AFTER.as_secs())));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                *name,
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
        }
        map
    }

    #[test]
    fn seconds_are_read_from_the_first_usable_header() {
        let map = headers(&[("retryafter", "7"), ("x-ratelimit-retryafter", "junk")]);
        let names = ["x-ratelimit-retryafter", "retryafter"];
        assert_eq!(
            retry_after(&map, &names, SystemTime::now()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn an_http_date_is_the_time_left_until_it() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let map = headers(&[("retry-after", &later)]);
        assert_eq!(
            retry_after(&map, &["retry-after"], now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let map = headers(&[("retry-after", &earlier)]);
        assert_eq!(
            retry_after(&map, &["retry-after"], now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn absent_negative_or_garbage_values_give_nothing_and_huge_ones_are_capped() {
        let now = SystemTime::now();
        assert_eq!(retry_after(&HeaderMap::new(), &["retry-after"], now), None);
        for junk in ["-3", "soon", "NaN"] {
            let map = headers(&[("retry-after", junk)]);
            assert_eq!(retry_after(&map, &["retry-after"], now), None, "{junk}");
        }
        let map = headers(&[("retry-after", "99999999999999")]);
        assert_eq!(
            retry_after(&map, &["retry-after"], now),
            Some(MAX_RETRY_AFTER)
        );
    }
}
