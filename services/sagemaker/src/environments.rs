//! The local Python environment that stands in for SageMaker's framework images: the
//! built-in XGBoost algorithm and script-mode jobs and models of the XGBoost, scikit-learn,
//! PyTorch, TensorFlow and Hugging Face images run on it. `basalt runtimes pull` installs it
//! once into `<runtime dir>/sagemaker` (pinned packages); nothing is fetched afterwards.
//!
//! PyTorch, TensorFlow and Transformers themselves are not installed (gigabytes each): a
//! script that imports them fails with Python's own ModuleNotFoundError in the job's
//! FailureReason.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `pull` installs, pinned so that every machine trains the same models. xgboost-cpu
/// is the xgboost library without its CUDA parts.
pub const PACKAGES: &[&str] = &[
    "xgboost-cpu==2.1.4",
    "numpy==2.2.6",
    "scipy==1.15.3",
    "scikit-learn==1.6.1",
    "pandas==2.2.3",
    // The built-in XGBoost algorithm's Parquet reader, as in AWS's container.
    "pyarrow==19.0.1",
    "boto3==1.44.18",
];

#[derive(Debug, Clone)]
pub struct Environments {
    /// `<runtime dir>/sagemaker`.
    pub dir: PathBuf,
}

impl Environments {
    pub fn new(runtime_dir: &Path) -> Environments {
        Environments {
            dir: runtime_dir.join("sagemaker"),
        }
    }

    pub fn installed(&self) -> bool {
        self.dir.join(".installed").exists()
    }

    /// Whether it holds exactly [`PACKAGES`] (an older Basalt's environment lacks some).
    fn current(&self) -> bool {
        std::fs::read_to_string(self.dir.join(".installed")).is_ok_and(|s| s == PACKAGES.join("\n"))
    }

    /// The environment's Python, or why there is none.
    pub fn python(&self) -> Result<PathBuf, String> {
        if self.installed() {
            Ok(self.dir.join("bin/python"))
        } else {
            Err(format!(
                "the local SageMaker environment is not installed (run `basalt runtimes pull`; it goes to {})",
                self.dir.display()
            ))
        }
    }

    /// Trees a process of the environment reads (the environment and the Python it was made
    /// from).
    pub fn read_paths(&self) -> Vec<PathBuf> {
        let mut read = vec![self.dir.clone()];
        if let Ok(cfg) = std::fs::read_to_string(self.dir.join("pyvenv.cfg")) {
            for line in cfg.lines() {
                if let Some(home) = line.strip_prefix("home = ") {
                    let home = PathBuf::from(home.trim());
                    if let Some(prefix) = home.parent() {
                        read.push(prefix.to_path_buf());
                    }
                }
            }
        }
        read
    }

    /// Installs the environment with the newest `python3` on PATH, unless it is installed;
    /// brings an older one to [`PACKAGES`] in place.
    pub fn pull(&self) -> Result<(), String> {
        if self.current() {
            eprintln!("sagemaker: installed ({})", self.dir.display());
            return Ok(());
        }
        eprintln!(
            "sagemaker: installing {} into {}",
            PACKAGES.join(" "),
            self.dir.display()
        );
        let pip = self.dir.join("bin/pip");
        let upgrade = self.installed() && pip.exists();
        if !upgrade {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let run = |cmd: &mut Command| -> Result<(), String> {
            let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{cmd:?} failed: {status}"))
            }
        };
        if !upgrade {
            run(Command::new("python3").args(["-m", "venv"]).arg(&self.dir))?;
        }
        run(Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PACKAGES))?;
        std::fs::write(self.dir.join(".installed"), PACKAGES.join("\n")).map_err(|e| e.to_string())
    }
}
