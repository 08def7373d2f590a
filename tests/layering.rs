//! The library never reaches up to the terminal: clap, the indicatif bars and
//! the CLI module are used only by `main.rs`, `cli.rs` and `commands/`. The
//! same check as
//! `grep -rn "crate::cli\|indicatif\|clap" src --include=*.rs | grep -v "^src/main.rs\|^src/cli.rs\|^src/commands/"`,
//! so an import that closes the old cycle again fails here.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_library_does_not_use_the_cli_clap_or_indicatif() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} files under {}", files.len(), src.display());
    let mut found = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "main.rs" || rel == "cli.rs" || rel.starts_with("commands/") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if ["crate::cli", "indicatif", "clap"].iter().any(|w| line.contains(w)) {
                found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the library reaches up to the CLI (move this to commands/):\n{}", found.join("\n"));
}
