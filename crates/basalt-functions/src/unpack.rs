//! Deployment packages: checking a zip and unpacking it once per content hash.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// AWS's limit on a package's unzipped size.
pub const MAX_UNZIPPED: u64 = 262_144_000;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again.")]
    NotAZip,
    #[error("Unzipped size must be smaller than {MAX_UNZIPPED} bytes")]
    TooLarge,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The hex SHA-256 of a package: the name of its unpacked directory.
pub fn hex_sha256(zip: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(zip);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Checks that `zip` is a readable archive within the unzipped limit, without writing it.
pub fn check(zip: &[u8]) -> Result<(), UnpackError> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|_| UnpackError::NotAZip)?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let f = archive.by_index(i).map_err(|_| UnpackError::NotAZip)?;
        total = total.saturating_add(f.size());
    }
    if total > MAX_UNZIPPED {
        return Err(UnpackError::TooLarge);
    }
    Ok(())
}

/// Unpacks `zip` into `root/<hex sha256>` unless already there, and returns that directory.
/// Entries that would land outside it (`../x`, absolute paths) are skipped; modes are kept, so
/// a `bootstrap` stays executable. Concurrent callers each unpack into a temporary directory
/// and the first rename wins.
pub fn unpack(zip: &[u8], root: &Path) -> Result<PathBuf, UnpackError> {
    unpack_all(&[zip], root, &hex_sha256(zip))
}

/// Unpacks layers one over the other, in order (a later layer's file replaces an earlier
/// one's, as in AWS's `/opt`), into `root/<hash of their hashes>`.
pub fn unpack_layers(zips: &[&[u8]], root: &Path) -> Result<PathBuf, UnpackError> {
    let hexes: Vec<String> = zips.iter().map(|z| hex_sha256(z)).collect();
    unpack_all(zips, root, &layers_name(&hexes))
}

/// The directory [`unpack_layers`] uses for layers of these hex SHA-256s, in order: a
/// caller that knows the hashes finds an unpacked `/opt` without reading the packages.
pub fn layers_name(hexes: &[String]) -> String {
    let mut h = Sha256::new();
    for hex in hexes {
        h.update(hex.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn unpack_all(zips: &[&[u8]], root: &Path, name: &str) -> Result<PathBuf, UnpackError> {
    let dst = root.join(name);
    if dst.is_dir() {
        return Ok(dst);
    }
    std::fs::create_dir_all(root)?;
    let tmp = root.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&tmp)?;
    let mut total = 0u64;
    let result = zips
        .iter()
        .try_for_each(|zip| extract(zip, &tmp, &mut total));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, &dst).is_err() {
        // Another caller won; its copy is identical.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(dst)
}

fn extract(zip: &[u8], dst: &Path, total: &mut u64) -> Result<(), UnpackError> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|_| UnpackError::NotAZip)?;
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(|_| UnpackError::NotAZip)?;
        let Some(rel) = f.enclosed_name() else {
            continue;
        };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            continue;
        }
        let path = dst.join(&rel);
        if f.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A later layer replaces the file (even a read-only one).
        let _ = std::fs::remove_file(&path);
        let mut out = std::fs::File::create(&path)?;
        let mut limited = (&mut f).take(MAX_UNZIPPED - *total + 1);
        *total += std::io::copy(&mut limited, &mut out)?;
        if *total > MAX_UNZIPPED {
            return Err(UnpackError::TooLarge);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Zips made on Windows carry no mode; AWS makes such files readable.
            let mode = f.unix_mode().map_or(0o644, |m| m & 0o777) | 0o444;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            for (name, data, mode) in files {
                let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
                z.start_file(*name, opts).unwrap();
                z.write_all(data).unwrap();
            }
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn unpacks_once_keeps_modes_and_skips_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let zip = zip_of(&[
            ("bootstrap", b"#!/bin/sh\n", 0o755),
            ("lib/a.py", b"x = 1\n", 0o644),
            ("../evil", b"no", 0o644),
        ]);
        check(&zip).unwrap();
        let root = unpack(&zip, dir.path()).unwrap();
        assert_eq!(std::fs::read(root.join("lib/a.py")).unwrap(), b"x = 1\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert!(!dir.path().join("evil").exists());
        assert_eq!(unpack(&zip, dir.path()).unwrap(), root);
    }

    #[test]
    fn later_layers_replace_earlier_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = zip_of(&[
            ("python/m.py", b"a", 0o444),
            ("bin/tool", b"#!/bin/sh\n", 0o755),
        ]);
        let b = zip_of(&[("python/m.py", b"b", 0o644)]);
        let opt = unpack_layers(&[&a, &b], dir.path()).unwrap();
        assert_eq!(std::fs::read(opt.join("python/m.py")).unwrap(), b"b");
        assert!(opt.join("bin/tool").exists());
        assert_ne!(unpack_layers(&[&b, &a], dir.path()).unwrap(), opt);
    }

    #[test]
    fn garbage_is_not_a_zip() {
        assert!(matches!(check(b"hello"), Err(UnpackError::NotAZip)));
    }
}
