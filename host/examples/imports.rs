//! Lists what a proxy-wasm module imports: `cargo run -p vigil-host --example imports -- FILE`.
fn main() {
    for path in std::env::args().skip(1) {
        match vigil_host::Plugin::load(std::path::Path::new(&path)) {
            Ok(plugin) => {
                for import in plugin.imports() {
                    println!("{path}: {import}");
                }
            }
            Err(e) => eprintln!("{e}"),
        }
    }
}
