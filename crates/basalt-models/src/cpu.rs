//! Which CPU kernels this process may run, decided at run time, never at build time.
//!
//! llama.cpp's CPU kernels are built once per instruction-set level (ggml's
//! `GGML_CPU_ALL_VARIANTS`: `libggml-cpu-<level>.so`), and Basalt's embedding kernels dispatch
//! on detected features. A feature the CPU advertises is not always one the machine lets run:
//! in some KVM guests CPUID reports AMX and `arch_prctl(ARCH_REQ_XCOMP_PERM)` grants it, yet
//! the first tile instruction raises SIGILL. So each candidate level is *proven* before it is
//! used: its characteristic instructions run in a forked child, and a child that dies rules the
//! level out. The verdict is computed once per process and logged in one line.
//!
//! `BASALT_CPU_FEATURES=<level>` caps the choice (a level name below, or `baseline`, `avx2`,
//! `avx512`, `amx`), for a machine where even a proven level misbehaves, and for tests that
//! check every level gives the same answers.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// An instruction-set extension that distinguishes kernel levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Sse42,
    Avx,
    F16c,
    Fma,
    Avx2,
    Bmi2,
    AvxVnni,
    /// AVX-512 F, CD, VL, DQ and BW together (what ggml calls AVX512).
    Avx512,
    Avx512Vbmi,
    Avx512Vnni,
    Avx512Bf16,
    /// AMX-TILE and AMX-INT8.
    Amx,
}

use Feature::*;

/// One build of llama.cpp's CPU backend, weakest first. Names and feature sets are ggml's
/// (ggml/src/CMakeLists.txt, `ggml_add_cpu_backend_variant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub name: &'static str,
    pub features: &'static [Feature],
}

#[cfg(target_arch = "x86_64")]
pub const LEVELS: &[Level] = &[
    Level {
        name: "x64",
        features: &[],
    },
    Level {
        name: "sse42",
        features: &[Sse42],
    },
    Level {
        name: "sandybridge",
        features: &[Sse42, Avx],
    },
    Level {
        name: "ivybridge",
        features: &[Sse42, Avx, F16c],
    },
    Level {
        name: "piledriver",
        features: &[Sse42, Avx, F16c, Fma],
    },
    Level {
        name: "haswell",
        features: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2],
    },
    Level {
        name: "alderlake",
        features: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, AvxVnni],
    },
    Level {
        name: "skylakex",
        features: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512],
    },
    Level {
        name: "cannonlake",
        features: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi],
    },
    Level {
        name: "cascadelake",
        features: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vnni],
    },
    Level {
        name: "icelake",
        features: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni,
        ],
    },
    Level {
        name: "cooperlake",
        features: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vnni, Avx512Bf16,
        ],
    },
    Level {
        name: "zen4",
        features: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni, Avx512Bf16,
        ],
    },
    Level {
        name: "sapphirerapids",
        features: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni, Avx512Bf16, Amx,
        ],
    },
];

#[cfg(not(target_arch = "x86_64"))]
pub const LEVELS: &[Level] = &[];

/// Short names accepted by `BASALT_CPU_FEATURES` besides the level names.
const ALIASES: &[(&str, &str)] = &[
    ("baseline", "x64"),
    ("portable", "x64"),
    ("avx2", "haswell"),
    ("avx512", "skylakex"),
    ("avx512-vnni", "icelake"),
    ("avx512-bf16", "zen4"),
    ("amx", "sapphirerapids"),
    ("native", "sapphirerapids"),
];

/// What was chosen, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// The llama.cpp CPU backend level (`icelake`, `haswell`, ...); `None` off x86-64, where
    /// ggml picks among its own variants by their scores.
    pub level: Option<&'static str>,
    /// Features the CPU advertises and that ran in the probe.
    pub proven: Vec<Feature>,
    /// Features the CPU advertises but that failed their probe, with the cause.
    pub refused: Vec<(Feature, String)>,
    /// The `BASALT_CPU_FEATURES` cap, if set.
    pub cap: Option<String>,
}

impl Selection {
    /// Whether Basalt's own kernels may use `f`: proven, and not above the chosen level.
    pub fn allows(&self, f: Feature) -> bool {
        self.proven.contains(&f)
    }

    /// One line for logs, health and `basalt models list`.
    pub fn describe(&self) -> String {
        let mut s = match self.level {
            Some(l) => format!("CPU features proven up to level {l}"),
            None => "CPU levels chosen by ggml".to_owned(),
        };
        if let Some(cap) = &self.cap {
            s.push_str(&format!(" (capped by BASALT_CPU_FEATURES={cap})"));
        }
        for (f, why) in &self.refused {
            s.push_str(&format!("; {f:?} advertised but refused: {why}"));
        }
        s
    }
}

fn resolve_cap(cap: &str) -> Result<usize, String> {
    let name = ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(cap))
        .map_or(cap, |(_, n)| n);
    LEVELS
        .iter()
        .position(|l| l.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = LEVELS.iter().map(|l| l.name).collect();
            format!(
                "BASALT_CPU_FEATURES={cap:?}: expected one of {} or baseline, avx2, avx512, amx",
                names.join(", ")
            )
        })
}

/// Whether the `BASALT_CPU_FEATURES` value `cap` leaves feature `f` usable (an unknown cap
/// allows nothing).
pub fn cap_allows(cap: &str, f: Feature) -> bool {
    resolve_cap(cap).is_ok_and(|i| LEVELS[i].features.contains(&f))
}

/// The selection for this process: computed on first use (probes included), then cached.
pub fn selection() -> &'static Selection {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    SELECTION.get_or_init(|| {
        let cap = std::env::var("BASALT_CPU_FEATURES")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let s = select(cap.as_deref(), &advertised(), &mut probe);
        tracing::debug!("{}", s.describe());
        s
    })
}

/// Checks a `BASALT_CPU_FEATURES` value without probing anything.
pub fn validate_cap(cap: &str) -> Result<(), String> {
    if LEVELS.is_empty() {
        return Ok(());
    }
    resolve_cap(cap).map(|_| ())
}

/// Chooses the best level whose features are all advertised and proven, not above `cap`.
/// `probe` runs a feature's instructions and says why it failed.
pub fn select(
    cap: Option<&str>,
    advertised: &[Feature],
    probe: &mut dyn FnMut(Feature) -> Result<(), String>,
) -> Selection {
    let mut proven = Vec::new();
    let mut refused = Vec::new();
    for &f in advertised {
        match probe(f) {
            Ok(()) => proven.push(f),
            Err(why) => refused.push((f, why)),
        }
    }
    let (cap_index, cap_text) = match cap.map(resolve_cap) {
        Some(Ok(i)) => (i, cap.map(str::to_owned)),
        Some(Err(e)) => {
            tracing::warn!("{e}; ignoring it");
            (usize::MAX, None)
        }
        None => (usize::MAX, None),
    };
    let level = LEVELS
        .iter()
        .enumerate()
        .rev()
        .find(|(i, l)| *i <= cap_index && l.features.iter().all(|f| proven.contains(f)))
        .map(|(_, l)| l);
    if let Some(level) = level {
        // Basalt's own kernels follow the cap too: nothing above the chosen level runs.
        proven.retain(|f| level.features.contains(f));
    }
    Selection {
        level: level.map(|l| l.name),
        proven,
        refused,
        cap: cap_text,
    }
}

/// Features CPUID (and the OS's XSAVE state) advertise.
#[cfg(target_arch = "x86_64")]
pub fn advertised() -> Vec<Feature> {
    use std::arch::is_x86_feature_detected as has;
    let mut v = Vec::new();
    let mut add = |f: Feature, yes: bool| {
        if yes {
            v.push(f)
        }
    };
    add(Sse42, has!("sse4.2"));
    add(Avx, has!("avx"));
    add(F16c, has!("f16c"));
    add(Fma, has!("fma"));
    add(Avx2, has!("avx2"));
    add(Bmi2, has!("bmi2"));
    add(AvxVnni, has!("avxvnni"));
    add(
        Avx512,
        has!("avx512f")
            && has!("avx512cd")
            && has!("avx512vl")
            && has!("avx512dq")
            && has!("avx512bw"),
    );
    add(Avx512Vbmi, has!("avx512vbmi"));
    add(Avx512Vnni, has!("avx512vnni"));
    add(Avx512Bf16, has!("avx512bf16"));
    add(Amx, amx_advertised());
    v
}

#[cfg(not(target_arch = "x86_64"))]
pub fn advertised() -> Vec<Feature> {
    Vec::new()
}

/// CPUID.(7,0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), and XCR0 bits 17-18 (tile state
/// enabled by the OS).
#[cfg(target_arch = "x86_64")]
fn amx_advertised() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    let max_leaf = __cpuid(0).eax;
    if max_leaf < 7 {
        return false;
    }
    let leaf7 = __cpuid_count(7, 0);
    let tile = leaf7.edx & (1 << 24) != 0;
    let int8 = leaf7.edx & (1 << 25) != 0;
    let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
    if !(tile && int8 && osxsave) {
        return false;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available.
    let xcr0 = unsafe { xgetbv0() };
    xcr0 & (0b11 << 17) == 0b11 << 17
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// Runs `f`'s characteristic instructions in a forked child; a child killed by a signal (or
/// one that cannot get the permission the feature needs) rules the feature out.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn probe(f: Feature) -> Result<(), String> {
    // SAFETY: the probe allocates nothing and takes no lock of this process.
    match unsafe { in_child(Duration::from_secs(30), || probes::run(f)) } {
        Ok(0) => Ok(()),
        Ok(2) => Err("the OS refused the tile-data permission (arch_prctl)".into()),
        Ok(c) => Err(format!("the probe exited with status {c}")),
        Err(death) => Err(format!("the probe {death}")),
    }
}

/// Runs `f` in a forked child and returns its exit code, or how it died ("died of signal 4
/// (SIGILL)", "took over 30s"). The child has no core dump and leaves with `_exit`.
///
/// # Safety
/// After fork only this thread exists in the child: `f` must not wait for a lock another
/// thread of this process could hold (glibc's malloc is safe: fork resets it).
#[cfg(unix)]
pub(crate) unsafe fn in_child(timeout: Duration, f: impl FnOnce() -> i32) -> Result<i32, String> {
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(format!(
                "could not fork: {}",
                std::io::Error::last_os_error()
            ));
        }
        if pid == 0 {
            // Dies with its parent (a worker killed while proving a level must not leave a
            // hung child holding its pipes); no core dump for an expected SIGILL.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() == 1 {
                libc::_exit(102);
            }
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            libc::_exit(code);
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, libc::WNOHANG);
            if r == pid {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err(format!(
                    "could not be waited for: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if std::time::Instant::now() > deadline {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
                return Err(format!("took over {}s", timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if libc::WIFSIGNALED(status) {
            return Err(format!("died of {}", signal_name(libc::WTERMSIG(status))));
        }
        Ok(libc::WEXITSTATUS(status))
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub fn probe(_f: Feature) -> Result<(), String> {
    Ok(())
}

/// A signal's conventional name (`SIGILL`), for messages.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGILL => "SIGILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGFPE => "SIGFPE",
        libc::SIGINT => "SIGINT",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig} ({name})")
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod probes {
    use super::Feature;
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// Exit code for the probe child: 0 ran, 2 permission refused.
    pub(super) fn run(f: Feature) -> i32 {
        // SAFETY: each function is only called for a feature CPUID advertised; if the
        // machine still refuses it, the child dies of SIGILL, which is the answer.
        unsafe {
            match f {
                Feature::Sse42 => {
                    black_box(_mm_crc32_u32(black_box(1), 2));
                    0
                }
                Feature::Avx | Feature::F16c => avx(),
                Feature::Fma => fma(),
                Feature::Avx2 => avx2(),
                Feature::Bmi2 => bmi2(),
                // CPUID's word is taken; the level's forward pass (crate::level) proves it.
                Feature::AvxVnni => 0,
                Feature::Avx512 => avx512(),
                Feature::Avx512Vbmi => vbmi(),
                Feature::Avx512Vnni => vnni(),
                Feature::Avx512Bf16 => bf16(),
                Feature::Amx => amx(),
            }
        }
    }

    #[target_feature(enable = "avx,f16c")]
    unsafe fn avx() -> i32 {
        let a = _mm256_set1_ps(black_box(1.5));
        let h = _mm256_cvtps_ph::<0>(_mm256_add_ps(a, a));
        black_box(h);
        0
    }

    #[target_feature(enable = "avx,fma")]
    unsafe fn fma() -> i32 {
        let a = _mm256_set1_ps(black_box(1.5));
        black_box(_mm256_fmadd_ps(a, a, a));
        0
    }

    #[target_feature(enable = "avx2")]
    unsafe fn avx2() -> i32 {
        let a = _mm256_set1_epi32(black_box(1));
        black_box(_mm256_add_epi32(a, _mm256_slli_epi32::<1>(a)));
        0
    }

    #[target_feature(enable = "bmi2")]
    unsafe fn bmi2() -> i32 {
        black_box(_pdep_u32(black_box(0xff), 0xf0f0));
        0
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512cd")]
    unsafe fn avx512() -> i32 {
        let a = _mm512_set1_epi8(black_box(3));
        let b = _mm512_adds_epi8(a, a);
        black_box(b);
        0
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn vbmi() -> i32 {
        let a = _mm512_set1_epi8(black_box(3));
        black_box(_mm512_permutexvar_epi8(a, a));
        0
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn vnni() -> i32 {
        let a = _mm512_set1_epi32(black_box(0x01010101));
        black_box(_mm512_dpbusd_epi32(a, a, a));
        0
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn bf16() -> i32 {
        let a = _mm512_set1_ps(black_box(1.0));
        let h = _mm512_cvtne2ps_pbh(a, a);
        black_box(_mm512_dpbf16_ps(a, h, h));
        0
    }

    /// Requests the tile-data permission as ggml does, then configures the tiles, loads one
    /// and zeroes one: the instructions ggml's AMX kernels start with.
    ///
    /// As in ggml, the permission is requested on one thread and the tiles are used on that
    /// thread and on another one (llama.cpp's kernels run on OpenMP worker threads, whose
    /// first tile instruction is where a hypervisor without working XFD support faults).
    /// Threads after fork are fine here: glibc's fork leaves malloc usable in the child.
    unsafe fn amx() -> i32 {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        if unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        } != 0
        {
            return 2;
        }
        unsafe { tiles() };
        match std::thread::spawn(|| unsafe { tiles() }).join() {
            Ok(()) => 0,
            Err(_) => 1,
        }
    }

    unsafe fn tiles() {
        // Palette 1; tiles 0 and 1: 16 rows of 64 bytes.
        let mut cfg = [0u8; 64];
        cfg[0] = 1;
        cfg[16] = 64;
        cfg[18] = 64;
        cfg[48] = 16;
        cfg[49] = 16;
        let data = [0u8; 1024];
        let stride: usize = 64;
        // Raw encodings: the assembler need not know AMX, and the compiler must not.
        // ldtilecfg (%rdi); tilezero %tmm0; tileloadd (%rsi,%rdx,1),%tmm1; tilerelease
        unsafe {
            std::arch::asm!(
                ".byte 0xc4, 0xe2, 0x78, 0x49, 0x07",
                ".byte 0xc4, 0xe2, 0x7b, 0x49, 0xc0",
                ".byte 0xc4, 0xe2, 0x7b, 0x4b, 0x0c, 0x16",
                ".byte 0xc4, 0xe2, 0x78, 0x49, 0xc0",
                in("rdi") cfg.as_ptr(),
                in("rsi") data.as_ptr(),
                in("rdx") stride,
                options(nostack),
            );
        }
        black_box(&data);
    }
}

impl Selection {
    /// llama.cpp levels this CPU may run (every feature proven, not above the cap), best
    /// first: the candidates a forward pass then has to prove (`engine`).
    pub fn candidates(&self) -> Vec<&'static str> {
        let Some(top) = self.level else {
            return Vec::new();
        };
        let top = LEVELS.iter().position(|l| l.name == top).unwrap_or(0);
        LEVELS[..=top]
            .iter()
            .rev()
            .filter(|l| l.features.iter().all(|f| self.proven.contains(f)))
            .map(|l| l.name)
            .collect()
    }
}

/// Registers llama.cpp's CPU backend module for `level`, or off x86-64 (`None`) every module
/// ggml built, to choose among by its own scores. Must run before `llama_backend_init`, which
/// otherwise loads whatever module scores best by CPUID alone, AMX included.
pub fn load_llama_level(level: Option<&str>) -> Result<(), String> {
    quiet_ggml();
    let Some(level) = level else {
        for dir in backend_dirs().iter().filter(|d| d.is_dir()) {
            if let Some(d) = dir.to_str() {
                let d = std::ffi::CString::new(d).map_err(|e| e.to_string())?;
                // SAFETY: a valid C string; ggml copies what it keeps.
                unsafe { llama_cpp_sys_2::ggml_backend_load_all_from_path(d.as_ptr()) };
            }
        }
        return Ok(());
    };
    let path = backend_file(level).ok_or_else(|| {
        let dirs: Vec<String> = backend_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        format!(
            "llama.cpp's CPU kernels for {level} ({}ggml-cpu-{level}{}) are not in any of: {}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX,
            dirs.join(", ")
        )
    })?;
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid C string; the module was built with this very ggml.
    let reg = unsafe { llama_cpp_sys_2::ggml_backend_load(c.as_ptr()) };
    if reg.is_null() {
        return Err(format!("loading {} failed", path.display()));
    }
    Ok(())
}

/// ggml logs module loading to stderr before llama.cpp's own log switch exists; Basalt says
/// what it chose in one line of its own. `BASALT_LLAMA_LOG` keeps ggml's logs.
fn quiet_ggml() {
    unsafe extern "C" fn discard(
        _level: llama_cpp_sys_2::ggml_log_level,
        _text: *const std::os::raw::c_char,
        _user: *mut std::os::raw::c_void,
    ) {
    }
    if std::env::var_os("BASALT_LLAMA_LOG").is_none() {
        // SAFETY: a callback that does nothing, valid for the life of the process.
        unsafe { llama_cpp_sys_2::ggml_log_set(Some(discard), std::ptr::null_mut()) };
    }
}

/// Where the llama.cpp CPU backend modules are: `BASALT_BACKENDS_DIR`, then next to the
/// executable (and its `ggml-backends/`), then where the build put them.
pub fn backend_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("BASALT_BACKENDS_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
    {
        dirs.push(exe_dir.join("ggml-backends"));
        dirs.push(exe_dir.clone());
        // Test binaries live in target/<profile>/deps.
        if let Some(up) = exe_dir.parent() {
            dirs.push(up.join("ggml-backends"));
        }
    }
    if let Some(d) = llama_cpp_sys_2::BACKENDS_DIR {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// The module file of a llama.cpp CPU level.
pub fn backend_file(level: &str) -> Option<PathBuf> {
    let file = format!(
        "{}ggml-cpu-{level}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    backend_dirs()
        .into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_cap_allows_the_features_of_its_level_only() {
        assert!(cap_allows("amx", Feature::Amx));
        assert!(cap_allows("amx", Feature::Avx512));
        assert!(!cap_allows("avx512", Feature::Amx));
        assert!(!cap_allows("baseline", Feature::Avx2));
        assert!(!cap_allows("no-such-level", Feature::Sse42));
    }

    fn all_but(refuse: &[Feature]) -> impl FnMut(Feature) -> Result<(), String> + '_ {
        move |f| {
            if refuse.contains(&f) {
                Err("the probe died of signal 4 (SIGILL)".into())
            } else {
                Ok(())
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    const SPR: &[Feature] = &[
        Sse42, Avx, F16c, Fma, Avx2, Bmi2, AvxVnni, Avx512, Avx512Vbmi, Avx512Vnni, Avx512Bf16, Amx,
    ];

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_refused_feature_is_never_chosen() {
        let s = select(None, SPR, &mut all_but(&[]));
        assert_eq!(s.level, Some("sapphirerapids"));
        let s = select(None, SPR, &mut all_but(&[Amx]));
        assert_eq!(s.level, Some("zen4"));
        assert!(!s.allows(Amx));
        assert!(
            s.describe()
                .contains("Amx advertised but refused: the probe died"),
            "{}",
            s.describe()
        );
        let s = select(None, SPR, &mut all_but(&[Avx512]));
        assert_eq!(s.level, Some("alderlake"));
        assert!(!s.allows(Avx512));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_cap_lowers_the_level_and_basalts_own_kernels() {
        let s = select(Some("avx2"), SPR, &mut all_but(&[]));
        assert_eq!(s.level, Some("haswell"));
        assert!(s.allows(Avx2) && !s.allows(Avx512) && !s.allows(Amx));
        let s = select(Some("icelake"), SPR, &mut all_but(&[]));
        assert_eq!(s.level, Some("icelake"));
        assert!(!s.allows(Avx512Bf16));
        let s = select(Some("baseline"), SPR, &mut all_but(&[]));
        assert_eq!(s.level, Some("x64"));
        // An unknown cap is ignored with a warning, not obeyed as "nothing".
        let s = select(Some("pentium"), SPR, &mut all_but(&[]));
        assert_eq!(s.level, Some("sapphirerapids"));
        assert!(validate_cap("pentium").is_err() && validate_cap("AVX2").is_ok());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn an_old_cpu_gets_a_level_it_has() {
        let s = select(None, &[Sse42, Avx], &mut all_but(&[]));
        assert_eq!(s.level, Some("sandybridge"));
        let s = select(None, &[], &mut all_but(&[]));
        assert_eq!(s.level, Some("x64"));
    }

    /// The real probes on this machine: every advertised feature either runs or is refused
    /// with a cause, and the probe of a feature the CPU runs succeeds.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn probes_run_in_a_child_and_survive_what_they_find() {
        let advertised = advertised();
        assert!(
            advertised.contains(&Sse42),
            "x86-64 machines of this century have SSE4.2"
        );
        for f in &advertised {
            match probe(*f) {
                Ok(()) => {}
                Err(why) => assert!(why.contains("SIG") || why.contains("refused"), "{why}"),
            }
        }
        assert_eq!(probe(Sse42), Ok(()));
        // This test process is still alive whatever the probes met.
        let s = selection();
        assert!(s.level.is_some());
    }
}
