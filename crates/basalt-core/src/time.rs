//! Time formats of the AWS wire shared by services and the gateway.

/// An ISO 8601 basic date-time (`20150830T123600Z`, SigV4's `X-Amz-Date`) as epoch seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|d| d.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1440938160));
        assert_eq!(parse_amz_date("20150830T123600"), None);
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
    }
}
