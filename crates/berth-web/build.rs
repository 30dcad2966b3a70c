//! Embeds `web/dist` (the built UI) by generating one `include_bytes!` per
//! file. Without a built UI, a placeholder page is embedded instead, so that
//! Rust-only workflows (`cargo build`, `cargo test`) never need Node.js.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let web = manifest_dir.join("../../web");
    let dist = web.join("dist");

    let root = if dist.join("index.html").is_file() {
        println!("cargo::rerun-if-changed={}", dist.display());
        dist
    } else {
        // Watching the missing dist itself would rerun this script on every
        // build; `web/` changes when a build creates dist.
        println!("cargo::rerun-if-changed={}", web.display());
        let placeholder = out_dir.join("placeholder");
        fs::create_dir_all(&placeholder).expect("create placeholder dir");
        fs::write(placeholder.join("index.html"), PLACEHOLDER).expect("write placeholder");
        placeholder
    };

    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();

    let mut code = String::from("pub(crate) static FILES: &[crate::Asset] = &[\n");
    for (url_path, file) in &files {
        let body = fs::read(file).expect("read asset");
        writeln!(
            code,
            "    crate::Asset {{ path: {url_path:?}, content_type: {:?}, etag: {:?}, body: include_bytes!({:?}) }},",
            content_type(url_path),
            format!("\"{:016x}\"", fnv1a(&body)),
            file.display().to_string(),
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    fs::write(out_dir.join("assets.rs"), code).expect("write assets.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).expect("read dist dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under root");
            let url_path = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((
                format!("/{url_path}"),
                path.canonicalize().expect("canonical path"),
            ));
        }
    }
}

/// The file types a Vite build produces; anything else is served as bytes.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A content fingerprint for ETags; not a security boundary, so FNV-1a does.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Berth</title></head>
<body>
<h1>Berth</h1>
<p>The web UI was not built into this binary. Run <code>make run</code>
(or <code>scripts/web.sh build</code>, then rebuild) to include it.
The API is served under <code>/api/v1</code>.</p>
</body>
</html>
"#;
