//! The control crate's configuration parser (`aves::config::parse`: TOML, then
//! validation). Properties: no panic on any text; secrets never leak: a failed parse's
//! message holds no 16-hex-digit window of a secret (the value of a `secret` key when
//! the text is TOML; else a hex run on a line naming `secret`, which a TOML error may
//! quote), and a parsed config's `Debug` holds none of a key's secret (unless the input
//! also has it somewhere that is not a secret).
//!
//! `secret_file` is read from disk: inputs naming anything but a plain file name in
//! the target's own directory (which holds `key.hex`, valid, and `bad.hex`) are skipped,
//! so the fuzzer cannot make the parser read `/dev/zero` or a FIFO.
#![no_main]

use aves::config;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn config_path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("aves-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("key.hex"), "000102030405060708090a0b0c0d0e0f\n").expect("key");
        std::fs::write(dir.join("bad.hex"), "not hex\n").expect("key");
        dir.join("fuzz.toml")
    })
}

/// False when some `secret_file` value is more than a plain file name.
fn files_ok(v: &toml::Value) -> bool {
    match v {
        toml::Value::Table(t) => t.iter().all(|(k, v)| {
            let plain = |s: &str| !s.contains(['/', '\\', '\0']) && s != "." && s != "..";
            (k != "secret_file" || v.as_str().is_some_and(plain)) && files_ok(v)
        }),
        toml::Value::Array(a) => a.iter().all(files_ok),
        _ => true,
    }
}

/// The hex runs (see [`hex_runs`]) in the values of every `secret` key.
fn secret_values(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match v.as_str() {
                    Some(s) if k == "secret" => out.extend(hex_runs(s)),
                    _ => secret_values(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| secret_values(v, out)),
        _ => {}
    }
}

/// Runs of 16 or more hex digits in `text`, spaces allowed between them (as the
/// parser's own `looks_secret` reads them).
fn hex_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('!')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else if c != ' ' {
            if run.len() >= 16 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    out
}

/// The hex runs on lines that name `secret` but not `secret_file`.
fn secret_runs(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            line.match_indices("secret")
                .any(|(i, m)| !line[i + m.len()..].starts_with("_file"))
        })
        .flat_map(hex_runs)
        .collect()
}

/// Some 16-character window of `secret` is in `shown`, and the input has that window
/// nowhere but on `secret` lines (so it was not shown for another reason).
fn leaks(shown: &str, secret: &str, text: &str) -> Option<String> {
    let shown = shown.replace(' ', "");
    let elsewhere: String = text
        .lines()
        .filter(|l| !l.contains("secret"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(' ', "");
    let s: Vec<char> = secret.chars().filter(|c| *c != ' ').collect();
    s.windows(16)
        .map(|w| w.iter().collect::<String>())
        .find(|w| shown.contains(w.as_str()) && !elsewhere.contains(w.as_str()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<toml::Value>().ok();
    if parsed.as_ref().is_some_and(|v| !files_ok(v)) {
        return;
    }
    // The secrets: the values of `secret` keys when the text is TOML (then errors come
    // from validation, which may quote any other value, whatever it holds), else what
    // looks like one on a line naming `secret` (a TOML error may quote the text there).
    let secrets = match &parsed {
        Some(v) => {
            let mut out = Vec::new();
            secret_values(v, &mut out);
            out
        }
        None => secret_runs(text),
    };
    let path = config_path();
    match config::parse(path, text) {
        Err(e) => {
            let shown = e.to_string();
            for run in &secrets {
                if let Some(w) = leaks(&shown, run, text) {
                    panic!("config error shows part of a secret ({w}): {shown}");
                }
            }
        }
        Ok(cfg) => {
            let shown = format!("{cfg:?}");
            for k in &cfg.tunnel.keys {
                let hex: String = k.secret.iter().map(|b| format!("{b:02x}")).collect();
                if let Some(w) = leaks(&shown.to_lowercase(), &hex, &text.to_lowercase()) {
                    panic!("config Debug shows part of a secret ({w})");
                }
            }
        }
    }
});
