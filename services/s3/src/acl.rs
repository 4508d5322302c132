//! Access control lists, as S3 keeps them: grants of READ, WRITE, READ_ACP, WRITE_ACP and
//! FULL_CONTROL to canonical users and to the predefined groups. No HTTP here.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// The canonical user id S3 shows for an account.
pub fn canonical_id(account_id: &str) -> String {
    hex::encode(sha2::Sha256::digest(account_id.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    pub fn parse(s: &str) -> Option<Permission> {
        Some(match s {
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            "FULL_CONTROL" => Permission::FullControl,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    /// Whether holding `self` grants `wanted`.
    fn covers(self, wanted: Permission) -> bool {
        self == wanted || self == Permission::FullControl
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Grantee {
    /// A canonical user id.
    User { id: String },
    /// A predefined group's URI.
    Group { uri: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// Who a request comes from, as ACLs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// Signature checks are off: every request acts as the server's default account.
    Trusted,
    Anonymous,
    Account {
        account_id: String,
        /// The caller's ARN (root, assumed role...).
        arn: String,
        canonical_id: String,
    },
}

impl Requester {
    pub fn account(account_id: &str, arn: &str) -> Requester {
        Requester::Account {
            account_id: account_id.to_owned(),
            arn: arn.to_owned(),
            canonical_id: canonical_id(account_id),
        }
    }

    /// The account that acts (owns what it creates); `None` for anonymous requests.
    pub fn account_id<'a>(&'a self, default: &'a str) -> Option<&'a str> {
        match self {
            Requester::Trusted => Some(default),
            Requester::Anonymous => None,
            Requester::Account { account_id, .. } => Some(account_id),
        }
    }
}

/// A refusal of a grant list, as S3 words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("The e-mail address you provided does not match any account on record.")]
    UnresolvableEmail,
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema"
    )]
    Malformed,
}

/// The grants of a canned ACL for an object or bucket owned by `owner` in a bucket owned by
/// `bucket_owner` (canonical ids).
pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Vec<Grant>, AclError> {
    let user = |id: &str, permission| Grant {
        grantee: Grantee::User { id: id.to_owned() },
        permission,
    };
    let group = |uri: &str, permission| Grant {
        grantee: Grantee::Group {
            uri: uri.to_owned(),
        },
        permission,
    };
    // Grants to groups come before the owner's, as S3-compatible stores list them; the
    // bucket owner's grant (bucket-owner-*) follows the object owner's.
    let mut g = Vec::new();
    match name {
        "private" | "aws-exec-read" | "bucket-owner-read" | "bucket-owner-full-control" => {}
        "public-read" => g.push(group(ALL_USERS, Permission::Read)),
        "public-read-write" => {
            g.push(group(ALL_USERS, Permission::Read));
            g.push(group(ALL_USERS, Permission::Write));
        }
        "authenticated-read" => g.push(group(AUTHENTICATED_USERS, Permission::Read)),
        "log-delivery-write" => {
            g.push(group(LOG_DELIVERY, Permission::Write));
            g.push(group(LOG_DELIVERY, Permission::ReadAcp));
        }
        _ => {
            return Err(AclError::InvalidArgument(format!(
                "Invalid canned ACL: {name}"
            )));
        }
    }
    g.push(user(owner, Permission::FullControl));
    if bucket_owner != owner {
        match name {
            "bucket-owner-read" => g.push(user(bucket_owner, Permission::Read)),
            "bucket-owner-full-control" => g.push(user(bucket_owner, Permission::FullControl)),
            _ => {}
        }
    }
    Ok(g)
}

/// The grants of `x-amz-grant-*` headers (`id="...", uri="...", emailAddress="..."`), in
/// header order. `known` says whether a canonical id belongs to an account.
pub fn from_grant_headers(
    headers: &[(Permission, Option<&str>)],
    known: &dyn Fn(&str) -> bool,
) -> Result<Vec<Grant>, AclError> {
    let mut out = Vec::new();
    for (permission, value) in headers {
        let Some(value) = value else { continue };
        for item in value.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (kind, v) = item.split_once('=').ok_or_else(|| {
                AclError::InvalidArgument(format!("Invalid grant header: {item}"))
            })?;
            let v = v.trim().trim_matches('"');
            let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                "id" => grantee_user(v, known)?,
                "uri" => grantee_group(v)?,
                "emailaddress" => return Err(AclError::UnresolvableEmail),
                _ => {
                    return Err(AclError::InvalidArgument(format!(
                        "Invalid grant header: {item}"
                    )));
                }
            };
            out.push(Grant {
                grantee,
                permission: *permission,
            });
        }
    }
    Ok(out)
}

pub fn grantee_user(id: &str, known: &dyn Fn(&str) -> bool) -> Result<Grantee, AclError> {
    if !known(id) {
        return Err(AclError::InvalidArgument("Invalid id".into()));
    }
    Ok(Grantee::User { id: id.to_owned() })
}

pub fn grantee_group(uri: &str) -> Result<Grantee, AclError> {
    if ![ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY].contains(&uri) {
        return Err(AclError::InvalidArgument(format!(
            "Invalid group uri: {uri}"
        )));
    }
    Ok(Grantee::Group {
        uri: uri.to_owned(),
    })
}

/// Whether `grants` give `requester` the permission `wanted`. `ignore_public`: Block Public
/// Access's IgnorePublicAcls (grants to everyone and to any signed-in user do not count).
pub fn allows(
    grants: &[Grant],
    requester: &Requester,
    wanted: Permission,
    ignore_public: bool,
) -> bool {
    grants.iter().any(|g| {
        g.permission.covers(wanted)
            && match &g.grantee {
                Grantee::User { id } => {
                    matches!(requester, Requester::Account { canonical_id, .. } if canonical_id == id)
                }
                Grantee::Group { uri } if ignore_public => {
                    let _ = uri;
                    false
                }
                Grantee::Group { uri } => match uri.as_str() {
                    ALL_USERS => true,
                    AUTHENTICATED_USERS => !matches!(requester, Requester::Anonymous),
                    _ => false,
                },
            }
    })
}

/// Whether a grant list makes its resource public (to everyone or to any signed-in user).
pub fn is_public(grants: &[Grant]) -> bool {
    grants.iter().any(|g| {
        matches!(&g.grantee, Grantee::Group { uri } if uri == ALL_USERS || uri == AUTHENTICATED_USERS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_and_checks() {
        let owner = canonical_id("111111111111");
        let other = Requester::account("222222222222", "arn:aws:iam::222222222222:root");
        let me = Requester::account("111111111111", "arn:aws:iam::111111111111:root");
        let private = canned("private", &owner, &owner).unwrap();
        assert!(allows(&private, &me, Permission::Read, false));
        assert!(!allows(&private, &other, Permission::Read, false));
        assert!(!allows(
            &private,
            &Requester::Anonymous,
            Permission::Read,
            false
        ));
        let public = canned("public-read", &owner, &owner).unwrap();
        assert!(allows(
            &public,
            &Requester::Anonymous,
            Permission::Read,
            false
        ));
        assert!(!allows(
            &public,
            &Requester::Anonymous,
            Permission::Write,
            false
        ));
        assert!(!allows(
            &public,
            &Requester::Anonymous,
            Permission::Read,
            true
        ));
        assert!(is_public(&public) && !is_public(&private));
        let auth = canned("authenticated-read", &owner, &owner).unwrap();
        assert!(allows(&auth, &other, Permission::Read, false));
        assert!(!allows(
            &auth,
            &Requester::Anonymous,
            Permission::Read,
            false
        ));
        let bofc = canned("bucket-owner-full-control", &owner, &canonical_id("2")).unwrap();
        assert_eq!(bofc.len(), 2);
        assert!(canned("nope", &owner, &owner).is_err());
    }

    #[test]
    fn grant_headers() {
        let known = |id: &str| id == "abc";
        let g = from_grant_headers(
            &[
                (
                    Permission::Read,
                    Some("id=\"abc\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""),
                ),
                (Permission::WriteAcp, Some("id=abc")),
            ],
            &known,
        )
        .unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[2].permission, Permission::WriteAcp);
        assert!(from_grant_headers(&[(Permission::Read, Some("id=nobody"))], &known).is_err());
        assert_eq!(
            from_grant_headers(&[(Permission::Read, Some("emailAddress=a@b.c"))], &known),
            Err(AclError::UnresolvableEmail)
        );
        assert!(from_grant_headers(&[(Permission::Read, Some("garbage"))], &known).is_err());
    }
}
