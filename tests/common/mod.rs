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

/// Runs `lshrec`, asserts exit code 0 and returns its stdout.
#[allow(dead_code)] // not every test binary uses every helper
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = lshrec(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}
