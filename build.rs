//! Rebuilds the hub when the embedded admin panel (`web/`) or the embedded
//! database migrations (`migrations/`) change, and names the commit it is
//! built from (`PRESENCE_BUILD_COMMIT`: `git rev-parse --short HEAD`, or
//! `unknown` outside a git checkout) for `presence_build_info`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=migrations");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PRESENCE_BUILD_COMMIT={commit}");
    // A new commit (HEAD moving, or the branch it names) rebuilds.
    for path in [
        Some("HEAD".to_string()),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ]
    .into_iter()
    .flatten()
    {
        // A missing file would rerun this script on every build.
        let file = git(&["rev-parse", "--git-path", &path]);
        if let Some(file) = file.filter(|f| std::path::Path::new(f).exists()) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_string())
}
