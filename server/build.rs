//! Stamps the binary with what it was built from, for `--version` and the start-up log:
//! the commit (`git rev-parse --short HEAD`, or "unknown" outside a checkout) and the
//! build profile (debug or release). Uncommitted changes are not marked: the script
//! runs again only when HEAD moves, so such a mark would go stale.

use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // A build without the repository (an image's) is told the commit by its builder.
    println!("cargo:rerun-if-env-changed=EVENIRE_COMMIT");
    let commit = std::env::var("EVENIRE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=EVENIRE_COMMIT={commit}");
    println!("cargo:rustc-env=EVENIRE_BUILD_PROFILE={profile}");
    // Again when HEAD moves (a commit, a checkout), not on every build.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(head).display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
