//! Helpers shared by the integration tests.

use std::process::Command;

/// Runs the `lshrec` binary; returns (exit code, stdout, stderr).
pub fn lshrec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lshrec"))
        .args(args)
        .output()
        .expect("run lshrec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
