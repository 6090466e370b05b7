//! The `lshrec` binary: parses arguments, runs, and maps errors to exit codes (0 success, 2 bad
//! usage or input, 1 anything else, 130 interrupted). A closed stdout (`lshrec … | head`)
//! exits 0.

use clap::Parser;

fn main() {
    // Interrupted (Ctrl-C, or SIGTERM/SIGHUP from a cancelled job), no destructor runs: remove
    // the outputs still being written, so that every destination keeps its previous contents
    // and no temporary file stays behind, then exit 130 as a shell does for Ctrl-C.
    let _ = ctrlc::set_handler(|| {
        let n = lshrec::store::atomic::remove_unfinished();
        eprintln!("interrupted: {n} unfinished output file(s) removed, the previous ones kept");
        std::process::exit(130);
    });
    let cli = lshrec::cli::Cli::parse();
    let code = match lshrec::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(()) => 0,
        Err(e) => {
            let lib = e.downcast_ref::<lshrec::Error>();
            if let Some(lshrec::Error::Io { source, .. }) = lib {
                if source.kind() == std::io::ErrorKind::BrokenPipe {
                    std::process::exit(0);
                }
            }
            // Every lshrec error message already names its file, line and cause.
            eprintln!("error: {e}");
            lib.map(|l| l.exit_code()).unwrap_or(1)
        }
    };
    std::process::exit(code);
}
