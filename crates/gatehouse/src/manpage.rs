//! `gatehouse man`: manual pages generated from the command line's own
//! definition, so they never drift from `--help`.

use anyhow::{Context, Result};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Prints gatehouse(1), or with `out` writes it and one page per subcommand
/// (gatehouse-audit-verify(1), …) into that folder.
pub fn run(cmd: clap::Command, out: Option<&Path>) -> Result<ExitCode> {
    let mut cmd = cmd;
    cmd.build();
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .context("rendering the manual page")?;
        return match std::io::stdout().lock().write_all(&page) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(anyhow::anyhow!("writing the manual page: {e}"))
            }
            _ => Ok(ExitCode::SUCCESS),
        };
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    write_pages(&cmd, "gatehouse", dir, &mut written)?;
    eprintln!(
        "wrote {written} manual pages to {}: read one with `man -l {}`, or put them in a man1 \
         folder of your MANPATH",
        dir.display(),
        dir.join("gatehouse.1").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `cmd` as `name.1`, then its subcommands' pages.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path, written: &mut usize) -> Result<()> {
    let named = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(named)
        .render(&mut page)
        .with_context(|| format!("rendering {name}(1)"))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
