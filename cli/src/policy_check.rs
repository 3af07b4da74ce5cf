//! `vigil policy check`: the same validation the filter runs in `on_configure`.

use std::path::PathBuf;
use vigil_core::PluginConfig;

pub fn run(files: &[PathBuf]) -> u8 {
    let mut worst = 0;
    for file in files {
        let shown = file.display();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{shown}: cannot read: {e}");
                worst = 2;
                continue;
            }
        };
        match PluginConfig::parse(&bytes) {
            Ok(config) => println!(
                "{shown}: ok: policy {} version {} (sha256 {})",
                config.id, config.version, config.sha256
            ),
            Err(errors) => {
                for e in &errors {
                    println!("{shown}: {e}");
                }
                println!(
                    "{shown}: invalid: {} error{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
                worst = worst.max(1);
            }
        }
    }
    worst
}
