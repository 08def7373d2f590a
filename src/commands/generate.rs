//! `barge generate man|completions`: derived from the clap definition, so
//! `man/` is regenerated rather than written by hand.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{GenerateArgs, GenerateWhat};
use crate::error::{Error, Result};

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    match args.what {
        GenerateWhat::Man { dir } => {
            write_man_pages(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        GenerateWhat::Completions { shell } => {
            let mut cmd = crate::cli::command();
            clap_complete::generate(shell, &mut cmd, "barge", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Renders `barge.1` and one `barge-<sub>.1` per visible subcommand, in
/// memory, as (file name, contents) pairs. Tests compare these with `man/`.
pub fn render_man_pages() -> Vec<(String, Vec<u8>)> {
    let cmd = crate::cli::command();
    let mut pages = Vec::new();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf).expect("render to memory");
    pages.push(("barge.1".to_string(), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("barge-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).bin_name(name.clone());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buf).expect("render to memory");
        pages.push((format!("{name}.1"), buf));
    }
    pages
}

pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.into(), source })?;
    for (name, bytes) in render_man_pages() {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| Error::Write { path, source })?;
    }
    Ok(())
}
