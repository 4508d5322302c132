//! Paginated listings over key scans, with opaque tokens (`nextToken`) that hold the last
//! key returned.

use basalt_core::AwsError;

use crate::StateStore;

/// One page of a listing.
pub struct ScanPage {
    pub rows: Vec<(String, Vec<u8>)>,
    /// The token of the next page; `None` on the last.
    pub next: Option<String>,
}

/// At most `max` records of `table` under `prefix`, after the position a previous page's
/// `token` holds (a token from another listing is a ValidationException).
pub fn page(
    state: &dyn StateStore,
    table: &str,
    prefix: &str,
    token: Option<&str>,
    max: usize,
) -> Result<ScanPage, AwsError> {
    let max = max.max(1);
    let after = match token {
        Some(t) => Some(
            basalt_core::page_token::decode(t)
                .filter(|p| p.starts_with(prefix))
                .ok_or_else(|| AwsError::validation("The nextToken is not valid."))?,
        ),
        None => None,
    };
    let mut rows = state.scan(table, prefix, after.as_deref(), max + 1)?;
    let next = if rows.len() > max {
        rows.truncate(max);
        rows.last().map(|(k, _)| basalt_core::page_token::encode(k))
    } else {
        None
    };
    Ok(ScanPage { rows, next })
}

/// One page of a listing held in memory (filtered and sorted by the caller): at most `max`
/// items from the position a previous page's `token` holds, and the next page's token.
pub fn page_slice<'a, T>(
    items: &'a [T],
    token: Option<&str>,
    max: usize,
) -> Result<(&'a [T], Option<String>), AwsError> {
    let max = max.max(1);
    let start = match token {
        Some(t) => basalt_core::page_token::decode(t)
            .and_then(|p| p.parse::<usize>().ok())
            .ok_or_else(|| AwsError::validation("The nextToken is not valid."))?,
        None => 0,
    };
    let end = start.saturating_add(max).min(items.len());
    let page = items.get(start.min(items.len())..end).unwrap_or(&[]);
    let next = (end < items.len()).then(|| basalt_core::page_token::encode(&end.to_string()));
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryState;

    #[test]
    fn pages_cover_every_record_once() {
        let s = MemoryState::default();
        for i in 0..7 {
            s.put("t", &format!("a/{i}"), b"x").unwrap();
        }
        s.put("t", "b/0", b"x").unwrap();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let p = page(&s, "t", "a/", token.as_deref(), 3).unwrap();
            seen.extend(p.rows.into_iter().map(|(k, _)| k));
            match p.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        assert!(
            page(
                &s,
                "t",
                "b/",
                Some(&basalt_core::page_token::encode("a/1")),
                3
            )
            .is_err()
        );
    }

    #[test]
    fn pages_of_a_list_in_memory() {
        let items: Vec<u32> = (0..5).collect();
        let (page, next) = page_slice(&items, None, 2).unwrap();
        assert_eq!(page, &[0, 1]);
        let (page, next) = page_slice(&items, next.as_deref(), 2).unwrap();
        assert_eq!(page, &[2, 3]);
        let (page, next) = page_slice(&items, next.as_deref(), 2).unwrap();
        assert_eq!((page, next), (&[4][..], None));
        assert!(page_slice(&items, Some("not a token"), 2).is_err());
    }
}
