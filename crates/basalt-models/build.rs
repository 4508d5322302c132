//! Lays llama.cpp's shared libraries and CPU backend modules next to the binaries that need
//! them: `target/<profile>/` (the server), `deps/` (test binaries) and `examples/`, with the
//! modules in `target/<profile>/ggml-backends/`. The executables carry an `$ORIGIN` rpath
//! (.cargo/config.toml), so `target/<profile>` is a self-contained, relocatable layout.
//!
//! llama-cpp-sys-2 hard-links only the unversioned `libX.so` names there, which are relative
//! symlinks to `libX.so.0` and so dangle; the binaries ask for `libX.so.0`.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(backends) = std::env::var_os("DEP_LLAMA_BACKENDS_DIR").map(PathBuf::from) else {
        return;
    };
    let Some(out) = backends.parent() else { return };
    let Some(profile_dir) = profile_dir() else {
        return;
    };
    let libs: Vec<PathBuf> = ["lib", "lib64"]
        .iter()
        .map(|d| out.join(d))
        .filter(|d| d.is_dir())
        .flat_map(|d| entries(&d))
        .filter(|p| is_shared_lib(p))
        .collect();
    for dest in [
        profile_dir.clone(),
        profile_dir.join("deps"),
        profile_dir.join("examples"),
    ] {
        for lib in &libs {
            place(lib, &dest);
        }
    }
    let modules = profile_dir.join("ggml-backends");
    for m in entries(&backends).iter().filter(|p| is_shared_lib(p)) {
        place(m, &modules);
    }
    for p in libs.iter().chain(entries(&backends).iter()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

/// `target/<profile>`: OUT_DIR is `target/<profile>/build/<pkg>-<hash>/out`.
fn profile_dir() -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    Some(out.ancestors().nth(3)?.to_owned())
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn is_shared_lib(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with("lib") && (name.contains(".so") || name.ends_with(".dylib"))
}

/// Copies `src` into `dir`: a symlink as the same (relative) symlink, a file as a hard link
/// (a copy across filesystems), replacing what was there.
fn place(src: &Path, dir: &Path) {
    let _ = std::fs::create_dir_all(dir);
    let Some(name) = src.file_name() else { return };
    let dest = dir.join(name);
    let _ = std::fs::remove_file(&dest);
    let meta = match std::fs::symlink_metadata(src) {
        Ok(m) => m,
        Err(_) => return,
    };
    #[cfg(unix)]
    if meta.file_type().is_symlink() {
        if let Ok(target) = std::fs::read_link(src) {
            let _ = std::os::unix::fs::symlink(target, &dest);
        }
        return;
    }
    if std::fs::hard_link(src, &dest).is_err() {
        let _ = std::fs::copy(src, &dest);
    }
}
