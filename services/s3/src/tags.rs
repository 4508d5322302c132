//! Object tags: the `x-amz-tagging` header (URL-encoded `k=v&k2=v2`) and the tagging
//! subresource, with S3's limits.

use s3s::{S3Result, s3_error};

/// Tags in the order the caller gave them.
pub type Tags = Vec<(String, String)>;

const MAX_TAGS: usize = 10;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

/// Parses and checks an `x-amz-tagging` header.
pub fn from_header(header: Option<&str>) -> S3Result<Tags> {
    let Some(h) = header else {
        return Ok(Tags::new());
    };
    let tags: Tags = form_urlencoded::parse(h.as_bytes()).into_owned().collect();
    check(&tags)?;
    Ok(tags)
}

/// Converts and checks a `<Tagging>` body.
pub fn from_tag_set(set: &[s3s::dto::Tag]) -> S3Result<Tags> {
    let tags: Tags = set
        .iter()
        .map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        })
        .collect();
    check(&tags)?;
    Ok(tags)
}

/// Tags as S3 lists them: by key.
pub fn to_tag_set(tags: &Tags) -> Vec<s3s::dto::Tag> {
    let mut sorted: Vec<&(String, String)> = tags.iter().collect();
    sorted.sort();
    sorted
        .into_iter()
        .map(|(k, v)| s3s::dto::Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

fn check(tags: &Tags) -> S3Result<()> {
    if tags.len() > MAX_TAGS {
        // S3 answers this one with a code of its own that s3s has no constant for.
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("BadRequest".into()),
            "Object tags cannot be greater than 10",
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        return Err(e);
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() {
            return Err(s3_error!(
                InvalidTag,
                "The TagKey you have provided is invalid"
            ));
        }
        if k.chars().count() > MAX_KEY_CHARS {
            return Err(s3_error!(
                InvalidTag,
                "The TagKey you have provided is too long, max 128"
            ));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(s3_error!(
                InvalidTag,
                "The TagValue you have provided is too long, max 256"
            ));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: S3Result<Tags>) -> String {
        r.unwrap_err().code().as_str().to_owned()
    }

    #[test]
    fn header_is_url_encoded() {
        assert_eq!(
            from_header(Some("a=1&b=two%20words&c=")).unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two words".into()),
                ("c".into(), String::new())
            ]
        );
        assert!(from_header(None).unwrap().is_empty());
    }

    #[test]
    fn limits() {
        let many: String = (0..11).map(|i| format!("k{i}=v&")).collect();
        assert_eq!(code(from_header(Some(&many))), "BadRequest");
        assert_eq!(code(from_header(Some("a=1&a=2"))), "InvalidTag");
        assert_eq!(code(from_header(Some("=v"))), "InvalidTag");
        assert_eq!(
            code(from_header(Some(&format!("{}=v", "k".repeat(129))))),
            "InvalidTag"
        );
        assert_eq!(
            code(from_header(Some(&format!("k={}", "v".repeat(257))))),
            "InvalidTag"
        );
        assert!(from_header(Some(&format!("{}={}", "k".repeat(128), "v".repeat(256)))).is_ok());
    }
}
