//! The operator console and what other frontends rely on: the guided flow driven through a
//! pseudo-terminal in English and Japanese (save, restore with both confirmations, "no" at
//! either confirmation writes nothing, Ctrl-C), the translations (every key in both
//! languages, every key the code uses exists, `--help` in both languages), the NDJSON
//! events of save, restore and failures, `disks --json`, completions and the man page.

mod common;

use common::net::{Smb, SMB_PASSWORD, SMB_SHARE, SMB_USER};
use common::*;
use rexpect::process::wait::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const MBR_TOOLS: &[&str] = &["mke2fs", "e2fsck", "debugfs", "dumpe2fs", "sfdisk"];

fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("lifeboat-console-{tag}-"))
        .tempdir()
        .unwrap()
}

fn cli_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ───────────────────────────── translations ─────────────────────────────

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn locale(lang: &str) -> BTreeMap<String, String> {
    let p = cli_dir().join(format!("locales/{lang}.toml"));
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut out = BTreeMap::new();
    flatten("", &v, &mut out);
    out.remove("_version");
    out
}

fn placeholders(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = s;
    while let Some(i) = rest.find("%{") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                out.insert(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

#[test]
fn every_message_key_exists_in_both_languages() {
    let en = locale("en");
    let ja = locale("ja");
    assert!(en.len() > 150, "en.toml holds only {} keys", en.len());
    let missing_ja: Vec<&String> = en.keys().filter(|k| !ja.contains_key(*k)).collect();
    let missing_en: Vec<&String> = ja.keys().filter(|k| !en.contains_key(*k)).collect();
    assert!(
        missing_ja.is_empty(),
        "keys missing in ja.toml: {missing_ja:?}"
    );
    assert!(
        missing_en.is_empty(),
        "keys missing in en.toml: {missing_en:?}"
    );
    for (k, e) in &en {
        let j = &ja[k];
        assert!(!e.trim().is_empty() && !j.trim().is_empty(), "{k} is empty");
        assert_eq!(
            placeholders(e),
            placeholders(j),
            "{k}: the placeholders differ between en and ja"
        );
    }
    // Japanese texts are translated, not copies (file-format keys excepted).
    let same: Vec<&String> = en
        .iter()
        .filter(|(k, v)| {
            ja[*k] == **v
                && v.chars().any(|c| c.is_ascii_alphabetic())
                && !k.starts_with("op.")
                && v.split_whitespace().count() > 1
                && !v.starts_with('%')
                && !v.starts_with('{')
        })
        .map(|(k, _)| k)
        .collect();
    assert!(same.is_empty(), "untranslated in ja.toml: {same:?}");
}

/// Every `t!("key"` in the CLI's sources names a key of both files.
#[test]
fn every_key_the_code_uses_is_translated() {
    let en = locale("en");
    let ja = locale("ja");
    let mut files = Vec::new();
    let mut dirs = vec![cli_dir().join("src")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut used = BTreeSet::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("t!(") {
            let word_char = rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[i + 3..];
            if word_char {
                continue; // format!( and the like
            }
            let trimmed = rest.trim_start();
            if let Some(lit) = trimmed.strip_prefix('"') {
                if let Some(end) = lit.find('"') {
                    used.insert((lit[..end].to_string(), f.clone()));
                }
            }
        }
    }
    assert!(
        used.len() > 100,
        "only {} keys found in the sources",
        used.len()
    );
    for (k, f) in &used {
        assert!(
            en.contains_key(k),
            "{}: key {k} is not in en.toml",
            f.display()
        );
        assert!(
            ja.contains_key(k),
            "{}: key {k} is not in ja.toml",
            f.display()
        );
    }
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(bin());
    c.args(args)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_is_in_the_operators_language() {
    let ja = [("LANG", "ja_JP.UTF-8")];
    let (code, out, _) = run_env(&["--help"], &ja);
    assert_eq!(code, 0);
    for want in [
        "使い方",
        "コマンド",
        "オプション",
        "ディスク全体を新しいイメージに保存",
    ] {
        assert!(out.contains(want), "LANG=ja --help lacks {want:?}:\n{out}");
    }
    assert!(!out.contains("Save whole disks into a new image"), "{out}");
    // --lang wins over LANG, both ways.
    let (_, out, _) = run_env(&["--lang", "en", "--help"], &ja);
    assert!(
        out.contains("Usage:") && out.contains("Save whole disks into a new image"),
        "{out}"
    );
    let (_, out, _) = run_env(&["savedisk", "--help", "--lang=ja"], &[]);
    assert!(
        out.contains("保存するディスク") && out.contains("zstd 圧縮レベル"),
        "{out}"
    );
    // Every subcommand's every option has a Japanese text: no English help line is left.
    let (_, top, _) = run_env(&["--help"], &ja);
    let subs = [
        "savedisk",
        "saveparts",
        "restoredisk",
        "restoreparts",
        "list",
        "info",
        "check",
        "delete",
        "disks",
        "console",
        "completions",
        "manpage",
        "demo",
    ];
    for sub in subs {
        assert!(top.contains(sub), "--help does not list {sub}");
        let (code, out, err) = run_env(&[sub, "--help"], &ja);
        assert_eq!(code, 0, "{sub} --help: {err}");
        for line in out.lines().filter(|l| l.trim_start().starts_with('-')) {
            assert!(
                !line.is_ascii(),
                "{sub} --help (ja): option line without translation: {line:?}\n{out}"
            );
        }
    }
    // LC_ALL beats LANG.
    let (_, out, _) = run_env(&["--help"], &[("LANG", "ja_JP.UTF-8"), ("LC_ALL", "C")]);
    assert!(out.contains("Usage:"), "{out}");
}

#[test]
fn completions_and_manual_page_come_from_the_clap_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run_env(&["completions", shell], &[]);
        assert_eq!(code, 0, "{err}");
        let opt = |o: &str| {
            if shell == "fish" {
                format!("-l {o}")
            } else {
                format!("--{o}")
            }
        };
        for word in [
            "savedisk".to_string(),
            "restoredisk".into(),
            opt("repo"),
            opt("json"),
            opt("lang"),
        ] {
            assert!(
                out.contains(&word),
                "{shell} completions lack {word}:\n{out}"
            );
        }
    }
    let (code, out, _) = run_env(&["manpage"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains(".TH lifeboat") && out.contains("restoredisk"),
        "{out}"
    );
    let (_, out, _) = run_env(&["manpage", "--lang", "ja"], &[]);
    assert!(out.contains("ディスク全体をイメージに保存"), "{out}");
    let t = tempdir("man");
    let (code, _, err) = run_env(&["manpage", "--dir", s(&t.path().join("man"))], &[]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "lifeboat.1",
        "lifeboat-savedisk.1",
        "lifeboat-restoredisk.1",
    ] {
        let p = t.path().join("man").join(page);
        assert!(
            fs::metadata(&p).is_ok_and(|m| m.len() > 100),
            "{} missing",
            p.display()
        );
    }
}

#[test]
fn without_a_terminal_no_arguments_print_the_help() {
    let (code, out, _) = run_env(&[], &[]);
    assert_eq!(code, 2);
    assert!(out.contains("Usage:"), "{out}");
    let (code, _, err) = run_env(&["console"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("needs a terminal"), "{err}");
}

// ───────────────────────────── disks ─────────────────────────────

#[test]
fn disks_json_lists_holders_and_roles() {
    let (code, out, err) = run_env(&["--json", "disks"], &[]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let list = v.as_array().unwrap();
    for d in list {
        for field in [
            "name",
            "path",
            "size",
            "holders",
            "holder_devices",
            "partitions",
            "multipath",
            "selectable_for_restore",
        ] {
            assert!(d.get(field).is_some(), "disk {d} lacks {field}");
        }
        assert!(d.get("multipath_member_of").is_some());
        // `multipath`: null, or a map with its WWID and paths, or a path naming its map
        // (which is then not selectable for a restore).
        let mp = &d["multipath"];
        assert!(mp.is_null() || mp["wwid"].is_string(), "{d}");
        assert_eq!(d["selectable_for_restore"], mp["role"] != "path", "{d}");
        assert_eq!(
            d["holders"].as_array().unwrap().len(),
            d["holder_devices"].as_array().unwrap().len()
        );
        // A path of a multipath device names it.
        for h in d["holder_devices"].as_array().unwrap() {
            if h["kind"] == "multipath" {
                assert_eq!(
                    d["multipath_member_of"],
                    format!("/dev/{}", h["name"].as_str().unwrap())
                );
            }
        }
    }
    let (code, out, _) = run_env(&["disks"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("SERIAL/WWN") && out.contains("IN USE / ROLE"),
        "{out}"
    );
    let (_, out, _) = run_env(&["disks"], &[("LANG", "ja_JP.UTF-8")]);
    assert!(out.contains("シリアル/WWN"), "{out}");
}

// ───────────────────────────── fixtures ─────────────────────────────

fn fixture(d: &Path, seed: u64) -> Fixture {
    mbr_disk(
        d,
        "src.img",
        40,
        seed,
        &[
            ext("ext4", 16, TreeSpec::new(seed * 10 + 1, 2)),
            ext("ext2", 10, TreeSpec::new(seed * 10 + 2, 1)),
            raw(3, "da", seed * 10 + 3),
        ],
    )
}

// ───────────────────────────── NDJSON events ─────────────────────────────

/// Checks the shape of one operation's events (from its `start` to its `done`): order,
/// partition pairs, monotonic progress. Returns the partitions seen with their bytes.
fn check_operation(events: &[Value], op: &str) -> Vec<(u64, u64)> {
    assert_eq!(events.first().unwrap()["event"], "start", "{events:?}");
    assert_eq!(events[0]["operation"], op);
    let total = events[0]["bytes_total"].as_u64().unwrap();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done", "{events:?}");
    assert_eq!(last["operation"], op);
    let mut open: Option<u64> = None;
    let mut done_parts = Vec::new();
    let mut last_progress = 0u64;
    let mut progress_events = 0;
    for e in &events[1..events.len() - 1] {
        match e["event"].as_str().unwrap() {
            "partition_start" => {
                assert!(open.is_none(), "partition_start inside a partition: {e}");
                let p = e["partition"].as_u64().unwrap();
                if let Some((prev, _)) = done_parts.last() {
                    assert!(p > *prev, "partitions out of order: {e}");
                }
                for f in ["disk", "filesystem", "mode", "bytes"] {
                    assert!(e.get(f).is_some(), "{e} lacks {f}");
                }
                open = Some(p);
            }
            "partition_done" => {
                let p = e["partition"].as_u64().unwrap();
                assert_eq!(
                    open.take(),
                    Some(p),
                    "partition_done without its start: {e}"
                );
                done_parts.push((p, e["bytes"].as_u64().unwrap()));
            }
            "progress" => {
                let d = e["bytes_done"].as_u64().unwrap();
                assert!(d >= last_progress, "progress went backwards: {e}");
                assert!(d <= e["bytes_total"].as_u64().unwrap(), "{e}");
                last_progress = d;
                progress_events += 1;
            }
            "warning" => assert!(e["message"].is_string()),
            other => panic!("unexpected event {other} inside {op}: {e}"),
        }
    }
    assert!(open.is_none(), "a partition was never done");
    assert!(progress_events >= 1, "{op}: no progress event");
    assert_eq!(
        last["bytes_done"].as_u64().unwrap(),
        last_progress,
        "{op}: the last progress differs from done"
    );
    assert!(total > 0, "{op}: bytes_total is 0");
    done_parts
}

/// Splits a stream of events into operations (`start` … `done`).
fn operations(events: &[Value]) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    for e in events {
        if ["result", "note", "error"].contains(&e["event"].as_str().unwrap_or("")) {
            continue;
        }
        if e["event"] == "start" {
            out.push(Vec::new());
        }
        if let Some(cur) = out.last_mut() {
            cur.push(e.clone());
        }
    }
    out
}

#[test]
fn json_events_of_save_restore_and_failures() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("json");
    let d = t.path();
    let fx = fixture(d, 7);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();

    // savedisk
    let r = lifeboat(&[
        "--json",
        "savedisk",
        "--repo",
        s(&repo),
        "--image",
        "j1",
        "--disk",
        s(&fx.path),
    ])
    .ok();
    let ev = r.json_lines();
    assert!(ev.iter().all(|e| e["event"].is_string()), "{ev:?}");
    let ops = operations(&ev);
    assert_eq!(ops.len(), 1);
    let parts = check_operation(&ops[0], "savedisk");
    assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(ev.last().unwrap()["event"], "result");
    let m = info_json(&repo, "j1");
    for (n, bytes) in &parts {
        let p = m["disks"][0]["table"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["number"] == *n)
            .unwrap();
        assert_eq!(p["used_bytes"].as_u64().unwrap(), *bytes, "partition {n}");
    }

    // restoredisk: verify pass, then the write with per-partition events.
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 99);
    let r = lifeboat(&[
        "--json",
        "restoredisk",
        "--repo",
        s(&repo),
        "--image",
        "j1",
        "--disk",
        s(&target),
        "--yes",
    ])
    .ok();
    let ev = r.json_lines();
    let ops = operations(&ev);
    assert_eq!(ops.len(), 2, "{ev:?}");
    let verify = check_operation(&ops[0], "verify");
    assert!(verify.is_empty());
    let restored = check_operation(&ops[1], "restoredisk");
    assert_eq!(
        restored, parts,
        "restore partition events differ from the save's"
    );
    let total: u64 = ops[1][0]["bytes_total"].as_u64().unwrap();
    let done = ops[1].last().unwrap()["bytes_done"].as_u64().unwrap();
    assert_eq!(total, done);
    verify_restored(&fx, &target, d);

    // restoreparts of partition 2 only.
    garbage_file(&target, fx.size, 98);
    fs::copy(&fx.path, &target).unwrap();
    let before = sha_range(&target, fx.part(1).start, fx.part(1).size);
    let r = lifeboat(&[
        "--json",
        "restoreparts",
        "--repo",
        s(&repo),
        "--image",
        "j1",
        "--disk",
        s(&target),
        "--part",
        "2",
        "--yes",
        "--no-precheck",
    ])
    .ok();
    let ev = r.json_lines();
    let ops = operations(&ev);
    assert_eq!(ops.len(), 1, "{ev:?}");
    let restored = check_operation(&ops[0], "restoreparts");
    assert_eq!(restored.iter().map(|p| p.0).collect::<Vec<_>>(), [2]);
    assert_eq!(
        before,
        sha_range(&target, fx.part(1).start, fx.part(1).size)
    );

    // Failures end with one `error` event with a kind.
    let small = d.join("small.img");
    garbage_file(&small, fx.size / 2, 5);
    let r = lifeboat(&[
        "--json",
        "restoredisk",
        "--repo",
        s(&repo),
        "--image",
        "j1",
        "--disk",
        s(&small),
        "--yes",
    ])
    .code(3);
    let ev = r.json_lines();
    let last = ev.last().unwrap();
    assert_eq!(last["event"], "error", "{ev:?}");
    assert_eq!(last["kind"], "refused");
    assert!(
        last["message"].as_str().unwrap().contains("does not fit"),
        "{last}"
    );
    let r = lifeboat(&["--json", "check", "--repo", s(&repo), "--image", "nope"]);
    assert_ne!(r.code, 0);
    let ev = r.json_lines();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["event"], "error");
    assert!(ev[0]["kind"].is_string() && ev[0]["message"].is_string());
    // Every event name is one of the documented ones.
    let doc = fs::read_to_string(cli_dir().join("../../docs/EVENTS.md")).unwrap();
    for name in [
        "start",
        "partition_start",
        "progress",
        "partition_done",
        "warning",
        "done",
        "error",
        "result",
        "note",
    ] {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/EVENTS.md does not document {name}"
        );
    }
}

// ───────────────────────────── the console through a pseudo-terminal ─────────────────────────────

/// Texts the flow waits for, per language.
struct Texts {
    kind: &'static str,
    mount: &'static str,
    dir: &'static str,
    mode: &'static str,
    name: &'static str,
    invalid: &'static str,
    disk_table: &'static str,
    disk_save: &'static str,
    path: &'static str,
    another: &'static str,
    encrypt: &'static str,
    passphrase: &'static str,
    passphrase_again: &'static str,
    encrypted: &'static str,
    start_save: &'static str,
    saved: &'static str,
    command: &'static str,
    image: &'static str,
    target: &'static str,
    confirm1: &'static str,
    confirm2: &'static str,
    nothing: &'static str,
    restored: &'static str,
    intact: &'static str,
    cancelled: &'static str,
}

const EN: Texts = Texts {
    kind: "Where are the images kept?",
    mount: "Filesystem for the repository",
    dir: "Repository directory",
    mode: "What do you want to do?",
    name: "Name of the new image",
    invalid: "invalid name",
    disk_table: "IN USE / ROLE",
    disk_save: "Disk to save",
    path: "Path of the disk or disk image file",
    another: "Save another disk into the same image?",
    encrypt: "Encrypt the image?",
    passphrase: "Passphrase: ",
    passphrase_again: "Passphrase again: ",
    encrypted: "Encrypted: yes",
    start_save: "Start the save?",
    saved: "saved in",
    command: "The same as one command (for scripts):",
    image: "Which image?",
    target: "it will be OVERWRITTEN",
    confirm1: "Restore now?",
    confirm2: "Really overwrite",
    nothing: "Nothing was written.",
    restored: "restored onto",
    intact: "is intact",
    cancelled: "Cancelled; nothing was written.",
};

const JA: Texts = Texts {
    kind: "イメージの保存場所はどこですか?",
    mount: "リポジトリを置くファイルシステム",
    dir: "リポジトリのディレクトリ",
    mode: "何をしますか?",
    name: "新しいイメージの名前",
    invalid: "名前が正しくありません",
    disk_table: "使用中 / 役割",
    disk_save: "保存するディスク",
    path: "ディスクまたはディスクイメージファイルのパス",
    another: "同じイメージに別のディスクも保存しますか?",
    encrypt: "イメージを暗号化しますか?",
    passphrase: "パスフレーズ: ",
    passphrase_again: "パスフレーズ (確認): ",
    encrypted: "暗号化: あり",
    start_save: "保存を開始しますか?",
    saved: "に保存しました",
    command: "同じ処理を 1 行のコマンドで (スクリプト用):",
    image: "どのイメージですか?",
    target: "上書きされます",
    confirm1: "今すぐ復元しますか?",
    confirm2: "本当に",
    nothing: "何も書き込んでいません。",
    restored: "に復元しました",
    intact: "は正常です",
    cancelled: "中止しました。何も書き込んでいません。",
};

fn spawn_console(args: &[&str], lang_env: &str) -> PtySession {
    spawn_console_env(args, lang_env, &[])
}

fn spawn_console_env(args: &[&str], lang_env: &str, env: &[(&str, &str)]) -> PtySession {
    let mut c = Command::new(bin());
    c.env_remove("LIFEBOAT_SMB_PASSWORD")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied());
    c.args(args)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", lang_env)
        .env("TERM", "xterm")
        .env("COLUMNS", "160")
        .env("LINES", "50");
    spawn_with_options(
        c,
        Options::default()
            .timeout_ms(Some(60_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn the console on a pseudo-terminal")
}

/// rexpect hands over the terminal's bytes one `char` per byte: UTF-8 text is matched in
/// that form.
fn as_bytes_text(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

fn expect(p: &mut PtySession, what: &str) -> String {
    p.exp_string(&as_bytes_text(what))
        .unwrap_or_else(|e| panic!("the console did not show {what:?}: {e}"))
}

/// Sends keys. The terminal library switches raw mode on for each key read and off again,
/// so keys are sent one at a time with a pause (a Backspace arriving while the terminal is
/// in line mode would be eaten by the line discipline).
fn key(p: &mut PtySession, k: &str) {
    for c in k.chars() {
        p.send(&c.to_string()).unwrap();
        p.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

fn exit_code(p: &mut PtySession) -> i32 {
    match p.process_mut().wait().unwrap() {
        WaitStatus::Exited(_, c) => c,
        other => panic!("the console ended with {other:?}"),
    }
}

/// Chooses "type a path" (the last item of the menu, one step up from the first).
fn type_path(p: &mut PtySession, prompt: &str, path: &Path) {
    key(p, "k");
    key(p, "\r");
    expect(p, prompt);
    key(p, &format!("{}\r", path.display()));
}

/// The restore steps up to the first confirmation; `unlock`: the passphrase the console
/// asks for when an encrypted image is chosen (the first time in a session).
fn restore_until_confirm(p: &mut PtySession, t: &Texts, target: &Path, unlock: Option<&str>) {
    expect(p, t.mode);
    key(p, "j");
    key(p, "\r");
    expect(p, t.image);
    key(p, "\r");
    if let Some(secret) = unlock {
        expect(p, t.passphrase);
        key(p, &format!("{secret}\r"));
    }
    expect(p, t.disk_table);
    expect(p, t.target);
    type_path(p, t.path, target);
    expect(p, t.confirm1);
}

/// The whole guided flow in one language: save with the proposed name refused/edited,
/// "n" at the first and at the second restore confirmation (nothing written), then a full
/// restore and a check; verifies the restored disk. With `passphrase`, the save is encrypted
/// (the passphrase typed twice, hidden) and the first restore unlocks the image with it; then
/// `lifeboat info` must call the image encrypted, and a restore with a wrong passphrase must
/// fail with exit 3 and write nothing.
fn console_flow(
    t: &Texts,
    args: &[&str],
    lang_env: &str,
    choose_language: bool,
    seed: u64,
    passphrase: Option<&str>,
) {
    if !need(MBR_TOOLS) {
        return;
    }
    let dir = tempdir("pty");
    let d = dir.path();
    let fx = fixture(d, seed);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let target = d.join("target.img");
    garbage_file(&target, fx.size, seed + 100);
    let target_before = sha_all(&target);
    let source_before = sha_all(&fx.path);

    let mut p = spawn_console(args, lang_env);
    if choose_language {
        expect(&mut p, "Language / 言語");
        key(&mut p, "\r"); // the default comes from LANG
    }
    // Repository: local directory, typed.
    expect(&mut p, t.kind);
    key(&mut p, "\r");
    expect(&mut p, t.mount);
    type_path(&mut p, t.dir, &repo);
    // Mode: save disks.
    expect(&mut p, t.mode);
    key(&mut p, "\r");
    // Image name: the proposal has the documented form; an invalid name is refused.
    let before = expect(&mut p, t.name);
    drop(before);
    let (_, proposal) = p
        .exp_regex(r"\d{4}-\d{2}-\d{2}-\d{2}-img")
        .expect("a proposed image name");
    for _ in 0..proposal.chars().count() {
        key(&mut p, "\x7f");
    }
    key(&mut p, "bad name!\r");
    expect(&mut p, t.invalid);
    // The prompt comes back with the proposal again.
    expect(&mut p, &proposal);
    for _ in 0..proposal.chars().count() {
        key(&mut p, "\x7f");
    }
    let image = format!("{proposal}-console");
    key(&mut p, &format!("{image}\r"));
    // Disk: the table, then the fixture typed as a path.
    expect(&mut p, t.disk_table);
    expect(&mut p, t.disk_save);
    type_path(&mut p, t.path, &fx.path);
    expect(&mut p, t.another);
    key(&mut p, "n");
    expect(&mut p, t.encrypt);
    if let Some(secret) = passphrase {
        key(&mut p, "y");
        expect(&mut p, t.passphrase);
        key(&mut p, &format!("{secret}\r"));
        expect(&mut p, t.passphrase_again);
        key(&mut p, &format!("{secret}\r"));
    } else {
        key(&mut p, "n");
    }
    let shown = expect(&mut p, t.start_save);
    assert_eq!(
        shown.contains(&as_bytes_text(t.encrypted)),
        passphrase.is_some(),
        "{shown}"
    );
    key(&mut p, "y");
    expect(&mut p, t.saved);
    expect(&mut p, t.command);
    expect(
        &mut p,
        &format!(
            "lifeboat savedisk --repo {} --image {image} --disk {}{}",
            repo.display(),
            fx.path.display(),
            if passphrase.is_some() {
                " --encrypt"
            } else {
                ""
            }
        ),
    );
    assert_eq!(list_status(&repo, &image), "complete");
    assert_eq!(
        sha_all(&fx.path),
        source_before,
        "the save changed the source"
    );

    // Restore, "n" at the first confirmation.
    restore_until_confirm(&mut p, t, &target, passphrase);
    key(&mut p, "n");
    expect(&mut p, t.nothing);
    assert_eq!(
        sha_all(&target),
        target_before,
        "\"n\" at the first confirmation wrote"
    );
    // Restore, "y" then "n" at the second, which names the disk and its size.
    restore_until_confirm(&mut p, t, &target, None);
    key(&mut p, "y");
    expect(&mut p, t.confirm2);
    expect(&mut p, &format!("{}", target.display()));
    expect(&mut p, "MiB");
    key(&mut p, "n");
    expect(&mut p, t.nothing);
    assert_eq!(
        sha_all(&target),
        target_before,
        "\"n\" at the second confirmation wrote"
    );
    // Restore for real.
    restore_until_confirm(&mut p, t, &target, None);
    key(&mut p, "y");
    expect(&mut p, t.confirm2);
    key(&mut p, "y");
    expect(&mut p, t.restored);
    expect(
        &mut p,
        &format!(
            "lifeboat restoredisk --repo {} --image {image} --disk {} --yes",
            repo.display(),
            target.display()
        ),
    );
    // Check the image (mode 5).
    expect(&mut p, t.mode);
    for _ in 0..4 {
        key(&mut p, "j");
    }
    key(&mut p, "\r");
    expect(&mut p, t.image);
    key(&mut p, "\r");
    expect(&mut p, t.intact);
    // Quit.
    expect(&mut p, t.mode);
    key(&mut p, "q");
    assert_eq!(exit_code(&mut p), 0);
    verify_restored(&fx, &target, d);
    if let Some(secret) = passphrase {
        let (code, out, err) = run_env(
            &["info", "--repo", s(&repo), "--image", &image],
            &[("LIFEBOAT_PASSPHRASE", secret)],
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("encrypted AES-256-GCM"), "{out}");
        let restored = sha_all(&target);
        let (code, _, err) = run_env(
            &[
                "restoredisk",
                "--repo",
                s(&repo),
                "--image",
                &image,
                "--disk",
                s(&target),
                "--yes",
            ],
            &[("LIFEBOAT_PASSPHRASE", "not the passphrase")],
        );
        assert_eq!(code, 3, "a wrong passphrase: {err}");
        assert_eq!(sha_all(&target), restored, "a wrong passphrase wrote");
    }
}

#[test]
fn console_save_and_restore_in_english() {
    console_flow(
        &EN,
        &["console", "--lang", "en"],
        "ja_JP.UTF-8",
        false,
        3,
        None,
    );
}

#[test]
fn console_save_and_restore_in_japanese() {
    // No --lang: the language step comes first, its default from LANG.
    // The save is encrypted (the passphrase typed at the hidden prompts).
    console_flow(&JA, &[], "ja_JP.UTF-8", true, 4, Some("lifeboat sea pass"));
}

#[test]
fn ctrl_c_at_a_prompt_cancels_cleanly() {
    for (lang, t) in [("en_US.UTF-8", &EN), ("ja_JP.UTF-8", &JA)] {
        let mut p = spawn_console(&["console"], lang);
        expect(&mut p, "Language / 言語");
        key(&mut p, "\r");
        expect(&mut p, t.kind);
        p.send_control('c').unwrap();
        expect(&mut p, t.cancelled);
        assert_eq!(exit_code(&mut p), 130);
    }
}

#[test]
fn log_file_records_the_run() {
    let t = tempdir("log");
    let log = t.path().join("lifeboat.log");
    let repo = t.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let (code, out, err) = run_env(
        &[
            "--log-file",
            s(&log),
            "check",
            "--repo",
            s(&repo),
            "--image",
            "missing",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    // The error is shown once on stderr, and recorded in the log with its class.
    assert_eq!(err.matches("lifeboat: error:").count(), 1, "{err}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("ERROR") && text.contains("missing"), "{text}");
    // -q: nothing but the error on stderr.
    let (_, _, err) = run_env(
        &["-q", "check", "--repo", s(&repo), "--image", "missing"],
        &[],
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The flow with a network repository: a Samba share on 127.0.0.1 chosen and filled in through
/// the console (server, share, user, hidden password), a save and a full restore through it;
/// the password is never shown, not even in the equivalent command.
#[test]
fn console_save_and_restore_through_an_smb_share() {
    if !need(MBR_TOOLS) {
        return;
    }
    let dir = tempdir("pty-smb");
    let d = dir.path();
    let Some(srv) = Smb::start(&d.join("srv")) else {
        return;
    };
    let fx = fixture(d, 7);
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 107);
    let repo = format!("smb://{SMB_USER}@127.0.0.1:{}/{SMB_SHARE}", srv.port);

    let mut p = spawn_console_env(
        &["console", "--lang", "en"],
        "C.UTF-8",
        &[("LIFEBOAT_CREDENTIALS", "/nonexistent/lifeboat-credentials")],
    );
    let t = &EN;
    expect(&mut p, t.kind);
    key(&mut p, "j"); // Windows share (SMB)
    key(&mut p, "\r");
    expect(&mut p, "Server (name or address)");
    key(&mut p, &format!("127.0.0.1:{}\r", srv.port));
    expect(&mut p, "Share name");
    key(&mut p, &format!("{SMB_SHARE}\r"));
    expect(&mut p, "Directory inside it");
    key(&mut p, "\r");
    expect(&mut p, "User name");
    key(&mut p, &format!("{SMB_USER}\r"));
    expect(&mut p, "Password (hidden)");
    key(&mut p, &format!("{SMB_PASSWORD}\r"));
    let mut shown = expect(&mut p, &format!("Repository {repo} opened."));
    // Save with the proposed name.
    expect(&mut p, t.mode);
    key(&mut p, "\r");
    expect(&mut p, t.name);
    let (_, image) = p
        .exp_regex(r"\d{4}-\d{2}-\d{2}-\d{2}-img")
        .expect("a proposed image name");
    key(&mut p, "\r");
    expect(&mut p, t.disk_table);
    expect(&mut p, t.disk_save);
    type_path(&mut p, t.path, &fx.path);
    expect(&mut p, t.another);
    key(&mut p, "n");
    expect(&mut p, t.encrypt);
    key(&mut p, "\r"); // the default: not encrypted
    expect(&mut p, t.start_save);
    key(&mut p, "y");
    expect(&mut p, t.saved);
    expect(&mut p, t.command);
    shown += &expect(
        &mut p,
        &format!(
            "lifeboat savedisk --repo {repo} --image {image} --disk {}",
            fx.path.display()
        ),
    );
    let stored = srv.share_dir().join(&image);
    assert!(
        stored.join("manifest.json").is_file(),
        "no manifest in {}",
        stored.display()
    );
    // Restore with both confirmations.
    restore_until_confirm(&mut p, t, &target, None);
    key(&mut p, "y");
    expect(&mut p, t.confirm2);
    key(&mut p, "y");
    expect(&mut p, t.restored);
    shown += &expect(
        &mut p,
        &format!(
            "lifeboat restoredisk --repo {repo} --image {image} --disk {} --yes",
            target.display()
        ),
    );
    shown += &expect(&mut p, t.mode);
    key(&mut p, "q");
    assert_eq!(exit_code(&mut p), 0);
    assert!(
        !shown.contains(SMB_PASSWORD),
        "the console showed the password"
    );
    verify_restored(&fx, &target, d);
}
